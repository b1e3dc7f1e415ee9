"""What one rule's detection parts share: its rule and folder, the drops it settled, its tasks.

Touched only on the loop thread. Imports config and model; never the pipeline, ledger or hub.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

from watcher.config import Rule
from watcher.model import ReadyDrop, Scan

# Every detect module logs as "watcher.detect", the logger name operators' filters know.
log = structlog.get_logger("watcher.detect")

Emit = Callable[[ReadyDrop], Awaitable[None]]
IsKnown = Callable[[str, str], bool]
# A ready drop on its way out: its scan, its ready marker (if any) and why it was ready.
Handover = tuple[Scan, Path | None, str]


class RuleState:
    """The state a rule's watcher, folder drops, batches and root passes all read and write."""

    def __init__(
        self,
        rule: Rule,
        *,
        loop: asyncio.AbstractEventLoop,
        emit: Emit,
        move_files: bool = True,
    ) -> None:
        self.rule = rule
        self.files_mode = rule.drop == "files"
        # False under `run --dry-run`: files-mode batches are logged as planned, never moved.
        self.move_files = move_files
        self.marker = rule.ready_marker if not self.files_mode else None
        self.root = os.path.abspath(rule.watch)  # the real path once attached
        self.loop = loop
        self._emit = emit
        # Drops emitted (fingerprint) or known to the ledger at startup (None): not deep-scanned
        # on rescans; an event makes them re-checked, and re-emitted only if they changed.
        self.done: dict[str, str | None] = {}
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()  # cancelled and awaited when the rule stops

    def forget(self, drop: str) -> None:
        self.done.pop(drop, None)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def hand_over_many(self, items: list[Handover]) -> None:
        for scan, marker, reason in items:
            await self.hand_over(scan, marker=marker, reason=reason)

    async def hand_over(self, scan: Scan, *, marker: Path | None, reason: str) -> None:
        """Emit one complete drop; if that fails, forget it so a rescan or event finds it again."""
        rule = self.rule
        fingerprint = scan.fingerprint()
        log.debug(
            "drop.complete",
            rule=rule.name,
            drop=scan.drop,
            files=len(scan.files),
            bytes=scan.total_bytes(),
            fingerprint=fingerprint[:16],
            settle_seconds=rule.settle_seconds,
            reason=reason,
        )
        ready = ReadyDrop(
            rule=rule.name, drop=scan.drop, scan=scan, marker=marker, detected_at=time.time()
        )
        try:
            await self._emit(ready)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Not handed over: forget it, so the next rescan or event finds it again.
            if self.done.get(scan.drop) == fingerprint:
                del self.done[scan.drop]
            log.exception("detect.emit_failed", rule=rule.name, drop=scan.drop, error=repr(exc))
