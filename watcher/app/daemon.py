"""`Daemon`: builds the parts, runs them on one asyncio loop, and stops them in order.

run -> serve: startup (config, token, client, ledger, reconcile, observers, full scan, READY=1)
-> main (detector, pipeline, reload, systemd pings) -> shutdown (STOPPING=1, stop intake, let
in-flight requests finish within shutdown_timeout, close). Signals only set events.
Imports everything below the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from watcher.app.dryrun import open_dry_run
from watcher.app.hubclient import build_client
from watcher.app.ledgers import open_daemon_ledger
from watcher.app.lock import StateDirLock
from watcher.app.outage import OutageWatch, cancel_tasks_since, outage_in, reopen_ledger
from watcher.app.reload import Reloader
from watcher.app.systemd import systemd_pings
from watcher.config import Config, load_config
from watcher.detect import Detector
from watcher.errors import (
    AlreadyRunningError,
    ConfigError,
    LedgerError,
    StartupError,
    TokenError,
)
from watcher.hub.client import HubClient
from watcher.ledger import Ledger
from watcher.logs import LogFormat, configure_logging
from watcher.metrics import NO_METRICS
from watcher.pipeline import Pipeline
from watcher.pipeline.service import PipelineService
from watcher.sdnotify import Notifier

if TYPE_CHECKING:
    from watcher.app.metrics import MetricsEndpoint

log = structlog.get_logger("watcher.daemon")


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: n for state, n in counts.items() if n}


class Daemon:
    """The service. `run()` returns when stopped; startup failures raise `WatcherError`s that
    were already logged as structured events (the CLI maps them to exit codes)."""

    def __init__(
        self,
        config_path: Path,
        *,
        log_format: LogFormat = "auto",
        log_level: str | None = None,
        force_exit: Callable[[], None] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.config_path = config_path
        # `run --dry-run`: log each request instead of sending it; the real ledger is not written.
        self.dry_run = dry_run
        # What a second SIGTERM/SIGINT does (the operator means it): the CLI exits at once.
        self._force_exit = force_exit
        self.log_format: LogFormat = log_format
        self.log_level = log_level
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._notifier = Notifier()
        self._outage = OutageWatch()
        # Set once the startup scan is done (READY=1), for in-process callers like the demo.
        self.ready = threading.Event()
        # Requests still in flight at the shutdown deadline (reconciled at the next start).
        self.in_flight_left = 0

    def run(self) -> None:
        """Run until SIGTERM/SIGINT or `request_stop()`.

        Raises:
            ConfigError, TokenError, StartupError, LedgerError: could not start (logged).
            Exception: anything unexpected, after logging `daemon.crashed` with its traceback.
        """
        configure_logging(level=self.log_level or "info", fmt=self.log_format)
        try:
            asyncio.run(self.serve())
        except (ConfigError, TokenError, StartupError, LedgerError):
            raise
        except Exception as exc:
            log.critical("daemon.crashed", error=repr(exc), exc_info=exc)
            raise

    def request_stop(self) -> None:
        """Thread-safe stop, for callers that are not signal handlers (tests, the demo)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # --- startup ----------------------------------------------------------------------------

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._outage.install(self._loop)
        config = self._load_config()
        configure_logging(level=self.log_level or config.log_level, fmt=self.log_format)
        # A dry run writes nothing to state_dir, so it may run beside the real daemon.
        lock = None if self.dry_run else self._lock_state_dir(config)
        try:
            for issue in config.warnings:
                log.warning("config.warning", issue=str(issue))
            await self._serve_locked(config)
        finally:
            if lock is not None:
                lock.release()

    async def _serve_locked(self, config: Config) -> None:
        token = self._read_token(config)
        client = self._build_client(config, token)
        if self.dry_run:
            dry = open_dry_run(config, client)
            try:
                await self._serve_with(config, token, dry)
            finally:
                dry.close()
            return
        try:
            ledger = open_daemon_ledger(config)
        except LedgerError as exc:
            client.close()
            log.error("ledger.unusable", error=str(exc))
            raise
        assert self._stop is not None
        while True:
            try:
                await self._serve_on(config, token, client, ledger)
                return
            except Exception as exc:
                # A database ledger's server went away: hold, then start afresh (outage.py).
                lost = outage_in(exc)
                if lost is None or config.state.backend != "postgresql" or self._stop.is_set():
                    raise
                log.warning(
                    "ledger.unavailable",
                    error=str(lost),
                    hint="holding: nothing is posted until the database answers again",
                )
            reopened = await reopen_ledger(
                config, open_ledger=open_daemon_ledger, stop=self._stop, notifier=self._notifier
            )
            if reopened is None:
                log.info("daemon.stopped", in_flight_left=0)
                return
            ledger, token = reopened, self._read_token(config)
            client = self._build_client(config, token)

    async def _serve_on(
        self, config: Config, token: str, client: HubClient, ledger: Ledger
    ) -> None:
        """One run of the pipeline on an open ledger (closed on the way out)."""
        endpoint = self._metrics_endpoint(config)
        pipeline = Pipeline(
            config=config,
            ledger=ledger,
            client=client,
            metrics=endpoint.recorder if endpoint is not None else NO_METRICS,
        )
        self._outage.reset()
        before = asyncio.all_tasks()
        try:
            if endpoint is not None:
                endpoint.start(config, pipeline)
            await self._serve_with(config, token, pipeline)
        except Exception as exc:
            if outage_in(exc) is not None:
                # Stop what the interrupted run left going before its ledger closes under it;
                # a POST in flight reaches AI Hub (or fails) before the next run reconciles it.
                await cancel_tasks_since(before)
                await pipeline.settle_calls(config.shutdown_timeout_seconds)
            raise
        finally:
            if endpoint is not None:
                endpoint.stop()
            pipeline.close()
            ledger.close()

    def _metrics_endpoint(self, config: Config) -> MetricsEndpoint | None:
        """The metrics listener when `metrics.listen` is set (prometheus_client is loaded only
        then), else None: the pipeline reports to the no-op."""
        if config.metrics.listen is None:
            return None
        from watcher.app.metrics import MetricsEndpoint

        assert self._loop is not None
        return MetricsEndpoint(self._loop)

    def _lock_state_dir(self, config: Config) -> StateDirLock:
        lock = StateDirLock(config.state_dir)
        try:
            lock.acquire()
        except AlreadyRunningError as exc:
            log.error(
                "daemon.already_running",
                error=str(exc),
                pid=exc.pid,
                state_dir=str(config.state_dir),
                hint="one daemon per state_dir; `status` and `retry` work beside it",
            )
            raise
        except StartupError as exc:
            log.error("daemon.lock_failed", error=str(exc), state_dir=str(config.state_dir))
            raise
        return lock

    def _set_log_level(self, level: str) -> None:
        configure_logging(level=level, fmt=self.log_format)

    def _load_config(self) -> Config:
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            log.error(
                "config.invalid", path=str(self.config_path), issues=[str(i) for i in exc.issues]
            )
            raise

    def _read_token(self, config: Config) -> str:
        try:
            return config.hub.read_token()
        except TokenError as exc:
            log.error("token.missing", error=str(exc))
            raise

    def _build_client(self, config: Config, token: str) -> HubClient:
        try:
            return build_client(config.hub, token)
        except (TokenError, ValueError, OSError) as exc:
            log.error(
                "hub.client_invalid", error=str(exc), hint="check hub.ca_bundle and the token"
            )
            raise StartupError(f"cannot build the hub client: {exc}") from exc

    async def _serve_with(self, config: Config, token: str, pipeline: PipelineService) -> None:
        detector = Detector(config.rules, is_known=pipeline.is_known, move_files=not self.dry_run)
        pipeline.set_forget(detector.forget)
        reloader = Reloader(
            config_path=self.config_path,
            config=config,
            token=token,
            pipeline=pipeline,
            detector=detector,
            notifier=self._notifier,
            apply_log_level=None if self.log_level else self._set_log_level,
        )
        self._install_signal_handlers(reloader.requested)
        log.info(
            "daemon.started",
            config=str(self.config_path),
            rules=[r.name for r in config.rules],
            state_dir=str(config.state_dir),
            hub=config.hub.base_url,
            token_source=config.hub.token_source(),
            pid=os.getpid(),
            **({"dry_run": True} if self.dry_run else {}),
        )
        await pipeline.startup()
        await self._main(reloader, pipeline, detector)

    # --- main and shutdown ------------------------------------------------------------------

    async def _main(
        self, reloader: Reloader, pipeline: PipelineService, detector: Detector
    ) -> None:
        assert self._stop is not None
        intake = asyncio.create_task(detector.run(pipeline.on_ready), name="detector")
        loops = [
            asyncio.create_task(pipeline.run(), name="pipeline"),
            asyncio.create_task(reloader.watch_files(), name="file-watch"),
            asyncio.create_task(reloader.serve_requests(), name="reloader"),
            asyncio.create_task(systemd_pings(self._notifier, pipeline), name="systemd"),
            asyncio.create_task(self._outage.raise_when_seen(), name="ledger outage"),
        ]
        tasks = [intake, *loops]
        stop_wait = asyncio.create_task(self._stop.wait())
        ready_wait = asyncio.create_task(detector.startup_scan_done.wait())
        try:
            await asyncio.wait([stop_wait, ready_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if ready_wait.done():
                self._notifier.ready()
                self.ready.set()
                log.info(
                    "daemon.ready", rules=len(reloader.config.rules), **_nonzero(pipeline.counts())
                )
            if not any(t.done() for t in tasks):
                await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready_wait.cancel()
            stop_wait.cancel()
        await _raise_if_crashed(tasks)
        await self._shutdown(reloader.config, pipeline, intake, loops)

    async def _shutdown(
        self,
        config: Config,
        pipeline: PipelineService,
        intake: asyncio.Task[None],
        loops: list[asyncio.Task[None]],
    ) -> None:
        """Stop intake first, then let in-flight requests finish within shutdown_timeout."""
        self._notifier.stopping()
        log.info("daemon.stopping")
        intake.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await intake
        left = await pipeline.drain(config.shutdown_timeout_seconds)
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.in_flight_left = left
        log.info("daemon.stopped", in_flight_left=left, **_nonzero(pipeline.counts()))

    def _install_signal_handlers(self, reload: asyncio.Event) -> None:
        # Like uvicorn: only the main thread may; tests driving serve() elsewhere use
        # request_stop().
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        assert self._stop is not None
        stop = self._stop

        def on_stop(signame: str) -> None:
            if stop.is_set() and self._force_exit is not None:
                log.warning("daemon.forced_exit", signal=signame)
                self._force_exit()
            log.info("daemon.signal", signal=signame)
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, on_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, reload.set)


async def _raise_if_crashed(tasks: list[asyncio.Task[None]]) -> None:
    """A loop that ended with an exception: stop the rest before the ledger closes under them,
    then re-raise it (the process exits 1)."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            for other in tasks:
                other.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise task.exception()  # type: ignore[misc]
