"""The gate in front of every POST: the hub pause (401/403), hub-wide holds (429, outages), max_rps.

Imports the hub adapter (for the probe) and the policy's step types; never the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    """Whether a POST may go out now, and what the last failures said about the hub.

    Pause is a small circuit breaker: open -> paused (401/403) -> trial (a probe listing passed,
    or the token changed) -> open after one POST succeeds. A token that may list runs but not
    start them fails its trial POST and goes back to paused quietly, so the pause never flaps.
    """

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
        # While paused: why, and whether one trial POST may (or did) go out.
        self._pause_reason: str | None = None
        self._trial = False
        self._trial_in_flight = False
        # No POST before this monotonic time (429 Retry-After, outage back-off).
        self._not_before = 0.0
        # Failures in a row whose policy step was `unwell` (5xx, transport), any drop.
        self.unwell_in_row = 0
        self._probe: asyncio.Task[None] | None = None

    # --- pause ------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        """True while POSTs must wait (paused, or a trial POST is already out)."""
        return not self._unpaused.is_set()

    @property
    def pause_reason(self) -> str | None:
        """Why submissions are paused (auth), None when open."""
        return self._pause_reason

    async def wait_unpaused(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for POSTs to be allowed; True when they are."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._unpaused.wait()
        return self._unpaused.is_set()

    def admit(self, wanted: int) -> int:
        """How many of `wanted` POSTs may start now: all when open, one trial after a pause."""
        if self._pause_reason is None:
            return wanted
        if not self._trial or self._trial_in_flight or self.paused:
            return 0
        self._trial_in_flight = True
        return min(wanted, 1)

    def pause(self, reason: str, http_status: int | None) -> None:
        """Hold every submission until a trial POST succeeds (after a probe or a new token)."""
        if self._pause_reason is not None:
            if self._trial:
                # The trial failed: back to waiting for the probe, without a second error.
                self._trial = self._trial_in_flight = False
                self._unpaused.clear()
                log.warning("hub.trial_failed", http_status=http_status, error=reason)
                self._start_probe()
            return
        self._pause_reason = reason
        self._unpaused.clear()
        log.error(
            "hub.paused",
            http_status=http_status,
            error=reason,
            hint="fix the token (token_env / token_file / credential), then SIGHUP",
        )
        self._start_probe()

    def try_again(self, why: str) -> None:
        """Let one trial POST through (the token changed, or a probe listing passed)."""
        if self._pause_reason is None or self._trial:
            return
        self._trial = True
        self._unpaused.set()
        self._on_resume()
        log.info("hub.trial", reason=why)

    def trial_released(self) -> None:
        """The trial POST was never sent (stopping): another drop may be the trial."""
        self._trial_in_flight = False

    def _resumed(self) -> None:
        self._pause_reason = None
        self._trial = self._trial_in_flight = False
        self._unpaused.set()
        self._on_resume()
        log.info("hub.resumed", reason="a submission succeeded")

    def _start_probe(self) -> None:
        if self._probe is not None and not self._probe.done():
            return
        self._probe = asyncio.get_running_loop().create_task(
            self._probe_while_paused(), name="probe"
        )
        self._probe.add_done_callback(_log_if_failed)

    async def _probe_while_paused(self) -> None:
        last_log = time.monotonic()
        while self.paused and not self._is_stopping():
            await asyncio.sleep(min(self._probe_s, 60.0))
            if not self._unpaused_now():
                try:
                    await self._calls.call(lambda c: c.list_runs(limit=1))
                except HubError as exc:
                    if time.monotonic() - last_log >= STILL_PAUSED_LOG_S:
                        last_log = time.monotonic()
                        log.warning("hub.paused", error=str(exc), still=True)
                    continue
                self.try_again("probe succeeded")
            return

    def _unpaused_now(self) -> bool:
        # A method, not the property: the state changes while the probe sleeps.
        return self._unpaused.is_set()

    # --- holds ------------------------------------------------------------------------------

    def hold_all(self, delay_s: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + delay_s)

    def hold_left_s(self) -> float:
        """Seconds until POSTs may go out again (0 or less: now)."""
        return self._not_before - time.monotonic()

    def note_success(self) -> None:
        self.unwell_in_row = 0
        if self._pause_reason is not None:
            self._resumed()

    def note_failure(self, step: Step) -> None:
        self._trial_in_flight = False
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
