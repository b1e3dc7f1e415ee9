"""`Daemon`: builds the parts, runs them on one asyncio loop, handles signals and config reload.

Lifecycle: startup (config, token, ledger, reconcile, observers, full scan, READY=1) -> main
(detector, pipeline, config watcher, systemd pings) -> shutdown (STOPPING=1, stop intake, let
in-flight requests finish within shutdown_timeout, close). Imports pipeline and below.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import structlog

from watcher.config import Config, HubConfig, diff_configs, load_config, token_path
from watcher.detect import Detector
from watcher.errors import ConfigError, LedgerError, TokenError
from watcher.hub.client import HubClient
from watcher.ledger import Ledger
from watcher.logs import LogFormat, configure_logging, register_secret
from watcher.pipeline import Pipeline, counts_text
from watcher.sdnotify import Notifier

log = structlog.get_logger("watcher.daemon")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2

# How often the config file and the token source are checked for changes. A stat per second
# is cheaper than an inotify watch on /etc and also sees symlink swaps (ConfigMaps, credentials).
FILE_CHECK_S = 1.0
STATUS_EVERY_S = 5.0


def build_client(hub: HubConfig, token: str) -> HubClient:
    return HubClient(
        base_url=hub.base_url,
        token=token,
        context=hub.context,
        timeout_s=hub.timeout_seconds,
        connect_timeout_s=hub.connect_timeout_seconds,
        ca_bundle=str(hub.ca_bundle) if hub.ca_bundle else None,
        max_connections=hub.max_concurrency + 2,
    )


def _file_state(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: n for state, n in counts.items() if n}


def _content_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Daemon:
    def __init__(
        self,
        config_path: Path,
        *,
        log_format: LogFormat = "auto",
        log_level: str | None = None,
    ) -> None:
        self.config_path = config_path
        self.log_format = log_format
        self.log_level = log_level
        self.stop_event: asyncio.Event | None = None
        self._reload_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notifier = Notifier()
        # Set once the startup scan is done (READY=1), for in-process callers like the demo.
        self.ready = threading.Event()
        self.in_flight_left = 0
        self._reload_lock: asyncio.Lock | None = None
        self._config_digest: str | None = None

    # --- entry points -----------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        configure_logging(level=self.log_level or "info", fmt=self._fmt())
        try:
            code = asyncio.run(self.serve())
        except Exception as exc:
            log.critical("daemon.crashed", error=repr(exc), exc_info=exc)
            return EXIT_FAILURE
        if self.in_flight_left and threading.current_thread() is threading.main_thread():
            # HTTP calls still blocked in worker threads past shutdown_timeout: their drops are
            # `submitting` in the ledger and are reconciled at the next start. Do not let the
            # interpreter wait for their sockets to time out.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code

    def request_stop(self) -> None:
        """Thread-safe stop, for callers that are not signal handlers (tests, the demo)."""
        if self._loop is not None and self.stop_event is not None:
            self._loop.call_soon_threadsafe(self.stop_event.set)

    def request_reload(self) -> None:
        if self._loop is not None and self._reload_event is not None:
            self._loop.call_soon_threadsafe(self._reload_event.set)

    def _fmt(self) -> LogFormat:
        return self.log_format

    # --- serve ------------------------------------------------------------------------------

    async def serve(self) -> int:
        self._loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        self._reload_event = asyncio.Event()
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error(
                "config.invalid",
                path=str(self.config_path),
                issues=[str(i) for i in exc.issues],
            )
            return EXIT_INVALID
        configure_logging(level=self.log_level or config.log_level, fmt=self._fmt())
        for issue in config.warnings:
            log.warning("config.warning", issue=str(issue))
        try:
            token = config.hub.read_token()
        except TokenError as exc:
            log.error("token.missing", error=str(exc))
            return EXIT_INVALID
        register_secret(token)
        try:
            client = build_client(config.hub, token)
        except (TokenError, ValueError, OSError) as exc:
            log.error(
                "hub.client_invalid", error=str(exc), hint="check hub.ca_bundle and the token"
            )
            return EXIT_INVALID
        try:
            ledger = Ledger.in_state_dir(config.state_dir)
        except LedgerError as exc:
            client.close()
            log.error("ledger.unusable", error=str(exc))
            return EXIT_FAILURE
        pipeline = Pipeline(config=config, ledger=ledger, client=client)
        detector = Detector(config.rules, is_known=pipeline.is_known)
        pipeline.set_forget(detector.forget)
        self._config = config
        self._token_digest = _token_digest(token)
        self._pipeline = pipeline
        self._detector = detector
        self._install_signal_handlers()
        log.info(
            "daemon.started",
            config=str(self.config_path),
            rules=[r.name for r in config.rules],
            state_dir=str(config.state_dir),
            hub=config.hub.base_url,
            token_source=config.hub.token_source(),
            pid=os.getpid(),
        )
        try:
            await pipeline.startup()
            return await self._main(config)
        finally:
            pipeline.close()
            ledger.close()

    async def _main(self, config: Config) -> int:
        assert self.stop_event is not None
        pipeline, detector = self._pipeline, self._detector
        tasks: list[asyncio.Task[None]] = []
        intake = asyncio.create_task(detector.run(pipeline.on_ready), name="detector")
        tasks.append(asyncio.create_task(pipeline.run(), name="pipeline"))
        tasks.append(asyncio.create_task(self._watch_files(), name="file-watch"))
        tasks.append(asyncio.create_task(self._reloader(), name="reloader"))
        tasks.append(asyncio.create_task(self._systemd_pings(), name="systemd"))
        stop_wait = asyncio.create_task(self.stop_event.wait())
        ready_wait = asyncio.create_task(detector.startup_scan_done.wait())
        await asyncio.wait(
            [stop_wait, ready_wait, intake, *tasks], return_when=asyncio.FIRST_COMPLETED
        )
        if ready_wait.done():
            self._notifier.ready()
            self.ready.set()
            log.info("daemon.ready", rules=len(config.rules), **_nonzero(pipeline.counts()))
        crashed = [t for t in [intake, *tasks] if t.done()]
        if not crashed:
            await asyncio.wait([stop_wait, intake, *tasks], return_when=asyncio.FIRST_COMPLETED)
            crashed = [t for t in [intake, *tasks] if t.done()]
        ready_wait.cancel()
        stop_wait.cancel()
        for task in crashed:
            if not task.cancelled() and task.exception() is not None:
                # Stop the rest before the ledger closes under them, then crash (exit 1).
                for other in [intake, *tasks]:
                    other.cancel()
                await asyncio.gather(intake, *tasks, return_exceptions=True)
                raise task.exception()  # type: ignore[misc]
        # Shutdown: stop intake first, then let in-flight requests finish.
        self._notifier.stopping()
        log.info("daemon.stopping")
        intake.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await intake
        left = await pipeline.drain(self._config.shutdown_timeout_seconds)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.in_flight_left = left
        log.info("daemon.stopped", in_flight_left=left, **_nonzero(pipeline.counts()))
        return EXIT_OK

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        assert self.stop_event is not None and self._reload_event is not None
        stop, reload = self.stop_event, self._reload_event

        def on_stop(signame: str) -> None:
            if stop.is_set():
                # A second TERM/INT: the operator means it.
                log.warning("daemon.forced_exit", signal=signame)
                sys.stdout.flush()
                os._exit(EXIT_FAILURE)
            log.info("daemon.signal", signal=signame)
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, on_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, reload.set)

    # --- reload -----------------------------------------------------------------------------

    async def _reloader(self) -> None:
        assert self._reload_event is not None
        while True:
            await self._reload_event.wait()
            self._reload_event.clear()
            await self.reload(reason="signal")

    async def reload(self, *, reason: str) -> None:
        """Load and validate the config; swap it in atomically, or keep the old one."""
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            await self._reload(reason)

    async def _reload(self, reason: str) -> None:
        self._notifier.reloading()
        self._config_digest = _content_digest(self.config_path)
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            self._reload_failed(reason, [str(i) for i in exc.issues if i.severity == "error"])
            return
        old = self._config
        diff = diff_configs(old, new)
        # Build the new client before changing anything, so a bad CA bundle or token keeps
        # the whole old configuration (atomic reload).
        try:
            fresh = self._new_client_if_needed(new, force=diff.hub_changed)
        except (TokenError, ValueError, OSError) as exc:
            self._reload_failed(reason, [f"hub: {exc}"])
            return
        if new.state_dir != old.state_dir:
            log.warning("config.restart_needed", key="state_dir", using=str(old.state_dir))
        self._config = new
        if fresh is not None:
            self._pipeline.replace_client(fresh)
        self._pipeline.update_config(new)
        self._detector.update_rules(new.rules)
        log.info(
            "config.reloaded",
            reason=reason,
            added=list(diff.added),
            removed=list(diff.removed),
            changed=list(diff.changed),
            hub_changed=diff.hub_changed,
            token_changed=fresh is not None and not diff.hub_changed,
        )
        self._notifier.ready()

    def _reload_failed(self, reason: str, issues: list[str]) -> None:
        log.error(
            "config.reload_failed",
            path=str(self.config_path),
            reason=reason,
            issues=issues,
            hint="still running on the previous rules",
        )
        self._notifier.ready()

    def _new_client_if_needed(self, config: Config, *, force: bool) -> HubClient | None:
        """A client for a changed token or changed hub settings; None when nothing changed.

        Raises TokenError, ValueError or OSError when the new client cannot be built.
        """
        try:
            token = config.hub.read_token()
        except TokenError as exc:
            if not force:
                log.error("token.missing", error=str(exc), hint="keeping the previous token")
                return None
            raise
        digest = _token_digest(token)
        if digest == self._token_digest and not force:
            return None
        register_secret(token)
        client = build_client(config.hub, token)
        self._token_digest = digest
        return client

    async def _watch_files(self) -> None:
        """Reload when the config file's content changes; rebuild the client when the token does."""
        config_state = _file_state(self.config_path)
        self._config_digest = _content_digest(self.config_path)
        token_state = self._token_file_state()
        while True:
            await asyncio.sleep(FILE_CHECK_S)
            now_state = _file_state(self.config_path)
            if now_state != config_state and now_state is not None:
                # Let a writer that is not atomic finish before reading.
                await asyncio.sleep(0.2)
                if _file_state(self.config_path) != now_state:
                    continue
                config_state = now_state
                # One attempt per content (SIGHUP records what it loaded too): a broken save
                # logs one error, and an edit followed by SIGHUP reloads once.
                if _content_digest(self.config_path) != self._config_digest:
                    await self.reload(reason="file changed")
                    token_state = self._token_file_state()
                continue
            new_token_state = self._token_file_state()
            if new_token_state != token_state:
                token_state = new_token_state
                try:
                    fresh = self._new_client_if_needed(self._config, force=False)
                except (TokenError, ValueError, OSError) as exc:
                    log.error("token.invalid", error=str(exc), hint="keeping the previous token")
                    continue
                if fresh is not None:
                    self._pipeline.replace_client(fresh)
                    log.info("token.reloaded", token_source=self._config.hub.token_source())

    def _token_file_state(self) -> tuple[int, int, int] | None:
        return _file_state(token_path(self._config.hub))

    async def _systemd_pings(self) -> None:
        """STATUS= with live counters; WATCHDOG=1 at half the configured interval."""
        interval = self._notifier.watchdog_interval_s
        period = min(interval, STATUS_EVERY_S) if interval else STATUS_EVERY_S
        last_status = ""
        last_status_at = 0.0
        while True:
            if interval:
                self._notifier.watchdog()
            now = time.monotonic()
            if self._notifier.enabled and now - last_status_at >= STATUS_EVERY_S:
                text = counts_text(self._pipeline.counts())
                if self._pipeline.paused:
                    text = "PAUSED (auth): " + text
                if text != last_status:
                    self._notifier.status(text)
                    last_status = text
                last_status_at = now
            await asyncio.sleep(period)
