"""Files mode: when loose files in a watch folder close as one group (a batch to move).

Pure: no I/O, no clock (callers pass `now`), no logging. Imports nothing from `watcher`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LooseFile:
    """A file directly in a files-mode watch folder."""

    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDecision:
    close: tuple[str, ...]  # names to move into a new batch now (empty: keep waiting)
    check_at: float | None  # when to look again (None: nothing loose, wait for an event)


class GroupTracker:
    """Groups loose files for `drop: files`, driven by an explicit clock.

    The group closes when nothing about it (membership, sizes, mtimes) changed for
    `settle_seconds` and no in-progress file sits beside it; or early, as soon as `max_files`
    files have each been unchanged for `settle_seconds` (a steady stream never settles as a
    whole). Closed names are forgotten at once, so later arrivals start a new group.
    """

    def __init__(self, *, settle_seconds: float, max_files: int) -> None:
        self.settle_seconds = max(0.0, settle_seconds)
        self.max_files = max(1, max_files)
        self._files: dict[str, tuple[LooseFile, float]] = {}
        self._changed_at = 0.0

    @property
    def pending(self) -> int:
        return len(self._files)

    def observe(
        self, loose: Mapping[str, LooseFile], *, in_progress: bool, now: float
    ) -> GroupDecision:
        files: dict[str, tuple[LooseFile, float]] = {}
        changed = loose.keys() != self._files.keys()
        for name, sig in loose.items():
            old = self._files.get(name)
            if old is not None and old[0] == sig:
                files[name] = old
            else:
                files[name] = (sig, now)
                changed = True
        self._files = files
        if changed:
            self._changed_at = now
        if not files:
            return GroupDecision(close=(), check_at=None)

        settle = self.settle_seconds
        settled = sorted(
            (since, name) for name, (_, since) in files.items() if now - since >= settle
        )
        if len(settled) >= self.max_files:
            close = tuple(name for _, name in settled[: self.max_files])
        elif not in_progress and now - self._changed_at >= settle:
            close = tuple(sorted(files))[: self.max_files]
        else:
            close = ()
        for name in close:
            del self._files[name]
        return GroupDecision(close=close, check_at=self._next_check(now, closed=bool(close)))

    def _next_check(self, now: float, *, closed: bool) -> float | None:
        if not self._files:
            return None
        if closed:
            return now  # another full batch may be waiting already
        settle = self.settle_seconds
        waits = []
        if self._changed_at + settle > now:
            waits.append(self._changed_at + settle)  # the whole group settles
        if len(self._files) >= self.max_files:
            sinces = sorted(since for _, since in self._files.values())
            waits.append(sinces[self.max_files - 1] + settle)  # max_files of them have settled
        waits = [w for w in waits if w > now]
        # Nothing left to wait for but an in-progress file beside the group: look again later.
        return min(waits) if waits else now + max(settle, 0.05)
