"""The metrics listener of a running daemon: the recorder, the scrape snapshot and /healthz.

The HTTP thread never touches the pipeline itself: each scrape and each health check hops onto
the event loop for what it reads there and waits at most LOOP_ANSWER_S for it. The drop counts,
one read of every row (0.2 s at 300,000 rows), are read on the HTTP thread from a read-only
connection of their own to the SQLite file (WAL: it never waits for the daemon's writes, nor
they for it); on a PostgreSQL ledger they are read on the loop. Imports the pipeline, the
ledger and `watcher.metrics`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import structlog

from watcher.config import Config
from watcher.config.schedule import is_open
from watcher.errors import LedgerError, StartupError
from watcher.ledger import Ledger, state_counts
from watcher.metrics.recorder import PrometheusMetrics
from watcher.metrics.server import MetricsServer
from watcher.metrics.snapshot import Health, Snapshot
from watcher.model import DropState
from watcher.pipeline import Pipeline
from watcher.pipeline.state import BEAT_S

log = structlog.get_logger("watcher.daemon")

T = TypeVar("T")

# How long a scrape or a health check waits for the loop to answer.
LOOP_ANSWER_S = 2.0
# A loop silent for this long is stuck (systemd's watchdog allows as much).
STALE_LOOP_S = 3 * BEAT_S
_STATES = tuple(s.value for s in DropState)


class MetricsEndpoint:
    """The recorder the pipeline reports to; `start()` binds the listener, whose reads are
    taken on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.recorder = PrometheusMetrics()
        self._pipeline: Pipeline | None = None
        self._server: MetricsServer | None = None
        # The counts' own read-only connection (SQLite), opened at the first scrape.
        self._reader: Ledger | None = None
        self._reader_lock = threading.Lock()

    def start(self, config: Config, pipeline: Pipeline) -> None:
        """Bind `metrics.listen` and serve on a thread.

        Raises:
            StartupError: the address cannot be bound (in use, not local, ...).
        """
        address = config.metrics.address()
        assert address is not None  # the daemon makes an endpoint only when it is set
        host, port = address
        self._pipeline = pipeline
        self.recorder.add_scrape(self.snapshot)
        try:
            server = MetricsServer(
                host=host, port=port, registry=self.recorder.registry, health=self.health
            )
        except OSError as exc:
            log.error("metrics.listen_failed", listen=config.metrics.listen, error=str(exc))
            raise StartupError(f"metrics.listen {config.metrics.listen}: {exc}") from exc
        server.start()
        self._server = server
        log.info("metrics.listening", host=host, port=server.port, paths=["/metrics", "/healthz"])

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # --- called on the HTTP thread ----------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """The scrape-time values, or None when the loop does not answer in time or the ledger
        cannot be read."""
        try:
            with self._reader_lock:
                reader = self._counts_reader()
                if reader is None:
                    return self._on_loop(lambda: self._take_snapshot(counts=True))
                snap = self._on_loop(lambda: self._take_snapshot(counts=False))
                try:
                    counts = tuple(state_counts(reader, snap.now))
                except LedgerError:
                    self._reader = None  # opened again at the next scrape
                    reader.close()
                    raise
                return dataclasses.replace(snap, counts=counts)
        except (TimeoutError, RuntimeError, LedgerError):
            return None

    def _counts_reader(self) -> Ledger | None:
        """The read-only connection to the SQLite ledger (None for PostgreSQL). Under
        `_reader_lock`: the HTTP server answers each scrape on a thread of its own.

        Raises:
            LedgerError: the file cannot be opened read-only.
        """
        if self._reader is None:
            pipeline = self._pipeline
            assert pipeline is not None  # started
            path = pipeline.state.ledger.path
            if path is None:
                return None
            self._reader = Ledger.open_readonly(path)
        return self._reader

    def health(self) -> Health:
        try:
            return self._on_loop(self._check_health)
        except TimeoutError:
            return Health(False, f"the event loop did not answer within {LOOP_ANSWER_S:g}s")
        except RuntimeError:
            return Health(False, "the daemon is stopping")

    def _on_loop(self, read: Callable[[], T]) -> T:
        """Run `read` on the loop and wait for it (TimeoutError after LOOP_ANSWER_S)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(read())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        try:
            return future.result(timeout=LOOP_ANSWER_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    # --- run on the loop --------------------------------------------------------------------

    def _take_snapshot(self, *, counts: bool) -> Snapshot:
        pipeline, now = self._pipeline, time.time()
        assert pipeline is not None  # started
        # The submit loop reads schedules on the pipeline's clock; so does this.
        when = datetime.fromtimestamp(pipeline.state.clock(), UTC)
        closed = frozenset(
            name for name, r in pipeline.state.rules.items() if not is_open(r.active_hours, when)
        )
        return Snapshot(
            now=now,
            counts=tuple(state_counts(pipeline.state.ledger, now)) if counts else (),
            rules=tuple(pipeline.state.rules),
            states=_STATES,
            paused=pipeline.paused,
            closed=closed,
            beat_ages=pipeline.beat_ages(),
        )

    def _check_health(self) -> Health:
        pipeline = self._pipeline
        assert pipeline is not None  # started
        stale = pipeline.stale_loops(STALE_LOOP_S)
        if stale:
            return Health(False, f"loops not beating for {STALE_LOOP_S:g}s: {', '.join(stale)}")
        reason = pipeline.pause_reason
        if reason is not None:
            return Health(False, f"hub paused on auth: {reason}")
        problem = _ledger_problem(pipeline)
        if problem is not None:
            return Health(False, problem)
        return Health(True)


def _ledger_problem(pipeline: Pipeline) -> str | None:
    """Why the ledger cannot be written, or None: it answers a read, and (SQLite) its file and
    folder are writable (a read-only remount or a lost permission show here first)."""
    ledger = pipeline.state.ledger
    try:
        ledger.schema_version()
    except LedgerError as exc:
        return f"ledger unusable: {exc}"
    path = ledger.path
    if path is None:  # a database server: answering the read is all we can check here
        return None
    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            return f"ledger not writable: {target}"
    return None
