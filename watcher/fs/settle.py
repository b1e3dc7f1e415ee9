"""When is a folder drop complete: the two-scan settle rule, driven by an explicit clock.

Pure: no I/O, no clock (callers pass `now`), no logging. Imports only `watcher.model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from watcher.model import Scan

Verdict = Literal["ready", "settling", "blocked"]
Reason = Literal[
    "ready", "marker", "changed", "stable_wait", "in_progress", "empty", "unreadable", "no_marker"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the tracker concluded from a scan, and when (same clock as `now`) to look again."""

    verdict: Verdict
    reason: Reason
    check_at: float | None  # None when ready


class SettleTracker:
    """Two-scan completeness for one drop, driven by an explicit clock.

    ready: the last two observed scans are identical, `settle_seconds` apart, with files and no
    in-progress names or read errors. With `marked=True` (ready marker present) one clean,
    non-empty scan is enough; with `marker_required=True` nothing else is (the producer's marker
    is the only "done" signal, so a writer pausing longer than settle_seconds is never cut off).
    A stable but incomplete drop (empty, in-progress, unreadable, no marker yet) is `blocked`;
    its re-check interval doubles up to `max_backoff_s` (events still poke it sooner).

    `changed_at` (observer mode): when the last change event for the drop arrived. An event
    comes after the change it reports, so the content has been quiet since then and the settle
    window counts from it rather than from the (debounced, later) scan. Still two scans must
    agree: the one that first sees the content and a later one at or after `changed_at + settle`,
    at least `min_gap_fraction * settle` after the first (so missing or late events can cut the
    window at most to that). Any event after the window started restarts it, and a change that
    no event after the previous scan explains counts from the scan itself (its event is late).
    Without `changed_at` (polling) the window counts from the scan that first saw the content.
    """

    def __init__(
        self,
        *,
        settle_seconds: float,
        marker_required: bool = False,
        max_backoff_s: float = 60.0,
        min_gap_fraction: float = 0.5,
    ) -> None:
        self.settle_seconds = max(0.0, settle_seconds)
        self.marker_required = marker_required
        self.max_backoff_s = max(max_backoff_s, self.settle_seconds)
        self.min_gap_seconds = self.settle_seconds * min(1.0, max(0.0, min_gap_fraction))
        self._digest: bytes | None = None
        self._since = 0.0  # start of the settle window (quiet since then, as far as we know)
        self._first_seen = 0.0  # the scan that first saw the current content
        self._seen_at = 0.0  # the previous scan
        self._blocked_checks = 0

    @property
    def stable_since(self) -> float | None:
        """When the current content was first seen (None before the first scan)."""
        return None if self._digest is None else self._since

    def observe(
        self,
        scan: Scan,
        *,
        now: float,
        marked: bool = False,
        changed_at: float | None = None,
    ) -> Decision:
        """Judge one scan taken at `now`; `changed_at`: the last change event seen for the drop."""
        digest = scan.state_digest()
        changed = digest != self._digest
        # An event is never later than `now` in a sane clock; clamp so a bad value cannot delay.
        event_at = now if changed_at is None else min(now, changed_at)
        if changed:
            if self._digest is not None and event_at < self._seen_at:
                # Changed since the previous scan, but no event since then says so: the change's
                # event is still on its way, so only this scan bounds when it happened.
                event_at = now
            self._digest = digest
            self._since = event_at
            self._first_seen = now
            self._blocked_checks = 0
        elif changed_at is not None and event_at > self._since:
            # An event after the window started: something was touched, quiet time restarts.
            self._since = event_at
        self._seen_at = now
        blocker = _blocker(scan)
        if marked and blocker is None:
            return Decision(verdict="ready", reason="marker", check_at=None)
        # The agreeing second scan: settle after the last change, and a real gap after the first.
        agree_at = max(self._since + self.settle_seconds, self._first_seen + self.min_gap_seconds)
        if changed:
            return Decision(verdict="settling", reason="changed", check_at=agree_at)
        if now < agree_at:
            return Decision(verdict="settling", reason="stable_wait", check_at=agree_at)
        if blocker is None and self.marker_required:
            blocker = "no_marker"
        if blocker is not None:
            self._blocked_checks += 1
            step = max(self.settle_seconds, 0.05) * 2 ** min(self._blocked_checks, 16)
            return Decision(
                verdict="blocked", reason=blocker, check_at=now + min(step, self.max_backoff_s)
            )
        return Decision(verdict="ready", reason="ready", check_at=None)


def _blocker(scan: Scan) -> Literal["in_progress", "empty", "unreadable", "no_marker"] | None:
    if scan.errors:
        return "unreadable"
    if scan.in_progress:
        return "in_progress"
    if not scan.files:
        return "empty"
    return None
