"""The gate in front of every POST: the hub pause (401/403), hub-wide holds (429, outages), max_rps.

Imports the hub adapter (for the probe) and the policy's step types; never the ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from watcher.hub.errors import HubError
from watcher.hub.policy import Step
from watcher.pipeline.calls import HubCalls

log = structlog.get_logger("watcher.pipeline")

# While paused, log that we are still paused at most this often.
STILL_PAUSED_LOG_S = 60.0


class RateLimiter:
    """A simple pacing limiter: at most `rate` acquisitions per second (None: unlimited)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = 0.0

    async def acquire(self) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        wait = self._next - now
        self._next = max(now, self._next) + 1.0 / self.rate
        if wait > 0:
            await asyncio.sleep(wait)


class Gate:
    """Whether a POST may go out now, and what the last failures said about the hub."""

    def __init__(
        self,
        *,
        calls: HubCalls,
        max_rps: float | None,
        probe_s: float,
        on_resume: Callable[[], None],
        is_stopping: Callable[[], bool],
    ) -> None:
        self._calls = calls
        self.limiter = RateLimiter(max_rps)
        self._probe_s = probe_s
        self._on_resume = on_resume
        self._is_stopping = is_stopping
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        # No POST before this monotonic time (429 Retry-After, outage back-off).
        self._not_before = 0.0
        # Failures in a row whose policy step was `unwell` (5xx, transport), any drop.
        self.unwell_in_row = 0
        self._probe: asyncio.Task[None] | None = None

    # --- pause ------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    async def wait_unpaused(self) -> None:
        await self._unpaused.wait()

    def pause(self, reason: str, http_status: int | None) -> None:
        """Hold every submission until the token changes or a probe call succeeds."""
        if self.paused:
            return
        self._unpaused.clear()
        log.error(
            "hub.paused",
            http_status=http_status,
            error=reason,
            hint="fix the token (token_env / token_file / credential), then SIGHUP",
        )
        self._probe = asyncio.get_running_loop().create_task(
            self._probe_while_paused(), name="probe"
        )
        self._probe.add_done_callback(_log_if_failed)

    def resume(self, why: str) -> None:
        if not self.paused:
            return
        self._unpaused.set()
        self._on_resume()
        log.info("hub.resumed", reason=why)

    async def _probe_while_paused(self) -> None:
        last_log = time.monotonic()
        while self.paused and not self._is_stopping():
            await asyncio.sleep(min(self._probe_s, 60.0))
            if self._unpaused.is_set():
                return
            try:
                await self._calls.call(self._calls.client.list_runs, limit=1)
            except HubError as exc:
                if time.monotonic() - last_log >= STILL_PAUSED_LOG_S:
                    last_log = time.monotonic()
                    log.warning("hub.paused", error=str(exc), still=True)
                continue
            self.resume("probe succeeded")

    # --- holds ------------------------------------------------------------------------------

    def hold_all(self, delay_s: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + delay_s)

    def hold_left_s(self) -> float:
        """Seconds until POSTs may go out again (0 or less: now)."""
        return self._not_before - time.monotonic()

    def note_success(self) -> None:
        self.unwell_in_row = 0

    def note_failure(self, step: Step) -> None:
        if step.unwell:
            self.unwell_in_row += 1

    def stop(self) -> None:
        """Cancel the probe of a paused hub (shutdown)."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None


def _log_if_failed(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("pipeline.task_failed", task=task.get_name(), error=repr(task.exception()))
