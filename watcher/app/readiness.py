"""Is a drop ready now, and if not, why: the checks `explain` runs, one function each.

The local checks judge one scan with the daemon's own settle rule (`fs.settle`), the schedule
check uses `config.schedule`, and the remote check asks AI Hub as the daemon's does (HEAD per
file). Imports config, fs, hub and the core.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from watcher.config import Rule
from watcher.config.schedule import opening_note
from watcher.fs.groups import GroupTracker, LooseFile
from watcher.fs.settle import SettleTracker
from watcher.hub.client import HubClient
from watcher.model import Scan

# The remote check HEADs at most this many files (a big drop would take minutes otherwise).
REMOTE_CHECK_MAX_FILES = 1000
# How many file names a reason names at most.
NAMED_AT_MOST = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocker:
    """Why a drop is not ready: a stable code (`not_settled`, `in_progress`, `marker_missing`,
    `remote_missing`, `remote_unchecked`, `empty`, `unreadable`, ...) and a sentence."""

    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DropView:
    """What the checks look at: one scan of a folder drop, taken at `now`."""

    rule: Rule
    root: Path  # the watch folder
    drop: str
    scan: Scan
    marked: bool  # the rule's ready marker is there
    last_change: float  # the newest change seen (file mtimes, the folder's mtime and ctime)
    now: float


Check = Callable[[DropView], Blocker | None]


def _names(names: tuple[str, ...] | list[str]) -> str:
    more = len(names) - NAMED_AT_MOST
    return ", ".join(names[:NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")


def check_unreadable(v: DropView) -> Blocker | None:
    if not v.scan.errors:
        return None
    return Blocker(code="unreadable", message=f"cannot read: {_names(list(v.scan.errors))}")


def check_in_progress(v: DropView) -> Blocker | None:
    if not v.scan.in_progress:
        return None
    names = _names(list(v.scan.in_progress))
    return Blocker(code="in_progress", message=f"a file is still in progress: {names}")


def check_empty(v: DropView) -> Blocker | None:
    if v.scan.files or v.scan.in_progress:
        return None
    return Blocker(code="empty", message="the drop has no files yet")


def check_settled(v: DropView) -> Blocker | None:
    """The daemon's two-scan rule, with the newest change standing in for the first scan."""
    tracker = SettleTracker(settle_seconds=v.rule.settle_seconds)
    first = min(v.last_change, v.now)
    tracker.observe(v.scan, now=first, changed_at=first)
    decision = tracker.observe(v.scan, now=v.now, marked=v.marked)
    if decision.reason not in ("changed", "stable_wait"):
        return None
    ago = max(0.0, v.now - v.last_change)
    left = max(0.0, (decision.check_at or v.now) - v.now)
    return Blocker(
        code="not_settled",
        message=f"not settled yet: last change {ago:.1f}s ago, settle_seconds is "
        f"{v.rule.settle_seconds:g} (ready in about {left:.1f}s if nothing changes)",
    )


def check_marker(v: DropView) -> Blocker | None:
    marker = v.rule.ready_marker
    if v.rule.drop != "folder" or not marker or v.marked:
        return None
    return Blocker(
        code="marker_missing",
        message=f"the ready marker is missing: {v.root / (v.drop + marker)}",
    )


# The local readiness checks, in the order they are reported.
READINESS_CHECKS: tuple[Check, ...] = (
    check_unreadable,
    check_in_progress,
    check_empty,
    check_settled,
    check_marker,
)


RuleCheck = Callable[[Rule, float], Blocker | None]


def check_schedule(rule: Rule, now: float) -> Blocker | None:
    """Outside the rule's active_hours: the daemon keeps the drop `ready` until they open."""
    note = opening_note(rule.active_hours, datetime.fromtimestamp(now, UTC))
    if note is None:
        return None
    return Blocker(
        code="outside_schedule", message=f"outside active_hours {rule.active_hours}: {note}"
    )


# Checks that hold back a drop whatever its files say, also once the ledger has it `ready`:
# they take the rule and the time (`now`).
HOLD_CHECKS: tuple[RuleCheck, ...] = (check_schedule,)


def hold_blockers(rule: Rule, now: float) -> list[Blocker]:
    """Every reason the rule holds its drops back at `now` (the schedule), in order."""
    return [b for b in (check(rule, now) for check in HOLD_CHECKS) if b is not None]


def local_blockers(v: DropView) -> list[Blocker]:
    """Every reason the drop is not ready, as far as the local folder tells."""
    return [b for b in (check(v) for check in READINESS_CHECKS) if b is not None]


def last_change_of(root: Path, drop: str, scan: Scan) -> float:
    """The newest change a scan can date: file mtimes, and the drop folder's mtime and ctime (a
    folder renamed in keeps its files' old mtimes, but its ctime is the rename)."""
    times = [f.mtime_ns / 1e9 for f in scan.files]
    try:
        st = os.stat(root / drop, follow_symlinks=False)
        times += [st.st_mtime, st.st_ctime]
    except OSError:
        pass
    return max(times, default=0.0)


def loose_blocker(
    rule: Rule,
    name: str,
    loose: dict[str, LooseFile],
    *,
    in_progress: bool,
    last: float,
    now: float,
) -> Blocker | None:
    """Files mode: whether the loose file `name` would close into a batch now (the daemon's
    group rule, with the newest change standing in for the first look)."""
    group = GroupTracker(settle_seconds=rule.settle_seconds, max_files=rule.max_files)
    first = min(last, now)
    group.observe(loose, in_progress=in_progress, now=first)
    decision = group.observe(loose, in_progress=in_progress, now=now)
    if name in decision.close:
        return None
    if in_progress and now - first >= rule.settle_seconds:
        return Blocker(
            code="in_progress", message="a file beside it is still in progress (the group waits)"
        )
    if name not in loose:
        return Blocker(code="not_a_drop_yet", message="not a loose file the group can take")
    return Blocker(
        code="not_settled",
        message=f"not settled yet: the loose files last changed {now - last:.1f}s ago, "
        f"settle_seconds is {rule.settle_seconds:g}",
    )


def remote_blocker(client: HubClient, input_dir: str, scan: Scan) -> Blocker | None:
    """HEAD each file under `input_dir` like the daemon's remote check; None when all are there
    with their local size.

    Raises:
        watcher.hub.errors.HubError: AI Hub could not be asked (the copy was not checked).
    """
    missing: list[str] = []
    files = scan.files[:REMOTE_CHECK_MAX_FILES]
    for f in files:
        meta = client.file_metadata(f"{input_dir}/{f.rel}")
        if meta is None:
            missing.append(f"{f.rel} (missing)")
        elif meta.is_folder:
            missing.append(f"{f.rel} (a folder on the remote side)")
        elif meta.size != f.size:
            missing.append(f"{f.rel} (local {f.size} B, remote {meta.size} B)")
    unchecked = len(scan.files) - len(files)
    tail = f"; {unchecked} more files not checked" if unchecked > 0 else ""
    if not missing:
        return None if not unchecked else Blocker(code="remote_unchecked", message=tail[2:])
    return Blocker(
        code="remote_missing",
        message=f"AI Hub does not see {len(missing)} of {len(files)} files yet: "
        f"{_names(missing)}{tail}",
    )


def unchecked_blocker(why: str) -> Blocker:
    return Blocker(
        code="remote_unchecked",
        message=f"the remote copy was not checked ({why}); the daemon posts only once AI Hub "
        "sees every file",
    )
