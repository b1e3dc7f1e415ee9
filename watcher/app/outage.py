"""The database of a shared ledger went away: the daemon holds instead of exiting.

On a PostgreSQL ledger a lost connection (the server restarted, a network cut) surfaces as
`LedgerUnavailableError` in whichever loop, callback or task touched the ledger first. The
daemon then does in its own process what a service manager's restart would do: it stops every
part of the interrupted run (detection, the pipeline, the work in flight), waits until the
database answers again (retrying with a capped back-off, saying so in the log and in systemd's
STATUS=), and starts afresh: drops left `submitting` are reconciled by run tag before anything
is posted again, and a full scan finds what arrived meanwhile. On SQLite nothing changes: a
ledger error stops the daemon. Imports the app's ledger opener, the ledger, sdnotify and the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Final, NoReturn

import structlog

from watcher.config import Config
from watcher.errors import LedgerUnavailableError
from watcher.ledger import Ledger
from watcher.sdnotify import Notifier

log = structlog.get_logger("watcher.daemon")

RETRY_FIRST_S: Final = 0.5
RETRY_MAX_S: Final = 5.0


def outage_in(exc: BaseException) -> LedgerUnavailableError | None:
    """The outage `exc` stands for: itself, or the first of a group made only of outages (a
    TaskGroup of the pipeline's loops); None for anything else."""
    if isinstance(exc, LedgerUnavailableError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        outages, rest = exc.split(LedgerUnavailableError)
        if outages is not None and rest is None:
            return outage_in(outages.exceptions[0])
    return None


class OutageWatch:
    """Notices a `LedgerUnavailableError` raised where nobody awaits it (a callback such as a
    batched ledger write, a background task) through the loop's exception handler; everything
    else goes on to the handler that was there before."""

    def __init__(self) -> None:
        self.error: LedgerUnavailableError | None = None
        self._seen = asyncio.Event()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if isinstance(exc, LedgerUnavailableError):
                if self.error is None:
                    self.error = exc
                    self._seen.set()
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    def reset(self) -> None:
        self.error = None
        self._seen.clear()

    async def raise_when_seen(self) -> NoReturn:
        """A loop of the daemon's: ends with the error once one was seen."""
        await self._seen.wait()
        assert self.error is not None
        raise self.error


async def cancel_tasks_since(before: set[asyncio.Task[Any]]) -> None:
    """Cancel every task started since `before` was taken (but the caller) and wait for them:
    the submit tasks, background writes and scans of an interrupted run."""
    current = asyncio.current_task()
    stray = [t for t in asyncio.all_tasks() if t not in before and t is not current]
    for task in stray:
        task.cancel()
    await asyncio.gather(*stray, return_exceptions=True)


async def reopen_ledger(
    config: Config,
    *,
    open_ledger: Callable[[Config], Ledger],
    stop: asyncio.Event,
    notifier: Notifier,
) -> Ledger | None:
    """Open the ledger again once its database answers; None when a stop was asked meanwhile.

    Raises:
        LedgerError: the database answers but the ledger is unusable (not an outage).
    """
    started = time.monotonic()
    attempt = 0
    while not stop.is_set():
        try:
            ledger = open_ledger(config)
        except LedgerUnavailableError as exc:
            attempt += 1
            retry_in = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempt - 1))
            log.warning("ledger.retry", attempt=attempt, retry_in_s=retry_in, error=str(exc))
            notifier.status(f"HOLDING: ledger unavailable for {time.monotonic() - started:.0f}s")
            notifier.watchdog()  # alive and holding, not stuck
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(retry_in):
                    await stop.wait()
            continue
        log.info("ledger.back", down_s=round(time.monotonic() - started, 1), attempts=attempt)
        return ledger
    return None
