"""Two-scan settling with hand-built scans and an explicit clock: never ready early, never stuck."""

from __future__ import annotations

import pytest

from watcher.fs.settle import SettleTracker
from watcher.model import FileEntry, Scan


def scan(*files: tuple[str, int, int], in_progress=(), errors=(), drop="d") -> Scan:
    return Scan(
        drop=drop,
        files=tuple(FileEntry(rel=r, size=s, mtime_ns=m) for r, s, m in sorted(files)),
        in_progress=tuple(in_progress),
        errors=tuple(errors),
    )


def test_ready_after_two_identical_scans_settle_apart() -> None:
    """Ready only when an identical scan comes settle_seconds after the first."""
    t = SettleTracker(settle_seconds=5)
    s = scan(("a", 1, 1))
    first = t.observe(s, now=100.0)
    assert (first.verdict, first.reason, first.check_at) == ("settling", "changed", 105.0)
    early = t.observe(s, now=103.0)
    assert (early.verdict, early.reason, early.check_at) == ("settling", "stable_wait", 105.0)
    done = t.observe(s, now=105.0)
    assert (done.verdict, done.check_at) == ("ready", None)


def test_change_restarts_the_settle_clock() -> None:
    """A different scan (file grew) restarts the wait from that moment."""
    t = SettleTracker(settle_seconds=5)
    t.observe(scan(("a", 1, 1)), now=100.0)
    grown = t.observe(scan(("a", 2, 2)), now=104.0)
    assert (grown.verdict, grown.check_at) == ("settling", 109.0)
    assert t.observe(scan(("a", 2, 2)), now=108.0).verdict == "settling"
    assert t.observe(scan(("a", 2, 2)), now=109.0).verdict == "ready"
    assert t.stable_since == 104.0


def test_settle_counts_from_the_event_not_the_first_scan() -> None:
    """With an event time, ready comes settle after the event, on a second agreeing scan."""
    t = SettleTracker(settle_seconds=0.5)
    s = scan(("a", 1, 1))
    first = t.observe(s, now=100.05, changed_at=100.0)
    assert (first.verdict, first.reason, first.check_at) == ("settling", "changed", 100.5)
    assert t.stable_since == 100.0
    assert t.observe(s, now=100.3, changed_at=100.0).verdict == "settling"
    assert t.observe(s, now=100.5, changed_at=100.0).verdict == "ready"


def test_a_late_first_scan_still_needs_a_second_scan() -> None:
    """A first scan after event + settle is not enough: a second one, a real gap later, agrees."""
    t = SettleTracker(settle_seconds=0.5)
    s = scan(("a", 1, 1))
    first = t.observe(s, now=101.0, changed_at=100.0)
    assert (first.verdict, first.check_at) == ("settling", 101.25)  # half of settle apart
    assert t.observe(s, now=101.1, changed_at=100.0).reason == "stable_wait"
    assert t.observe(s, now=101.25, changed_at=100.0).verdict == "ready"


def test_an_event_between_the_scans_restarts_the_window() -> None:
    """Any event after the window started pushes readiness to that event + settle."""
    t = SettleTracker(settle_seconds=0.5)
    s = scan(("a", 1, 1))
    t.observe(s, now=100.05, changed_at=100.0)
    d = t.observe(s, now=100.35, changed_at=100.3)  # touched, same content
    assert (d.verdict, d.reason, d.check_at) == ("settling", "stable_wait", 100.8)
    assert t.observe(s, now=100.5, changed_at=100.3).verdict == "settling"
    assert t.observe(s, now=100.8, changed_at=100.3).verdict == "ready"


def test_a_change_without_a_newer_event_counts_from_the_scan() -> None:
    """Content changed but no event since the previous scan (its event is late): count from now."""
    t = SettleTracker(settle_seconds=0.5)
    t.observe(scan(("a", 1, 1)), now=100.05, changed_at=100.0)
    grown = t.observe(scan(("a", 2, 2)), now=100.5, changed_at=100.0)
    assert (grown.verdict, grown.check_at) == ("settling", 101.0)
    assert t.observe(scan(("a", 2, 2)), now=100.9, changed_at=100.0).verdict == "settling"
    assert t.observe(scan(("a", 2, 2)), now=101.0, changed_at=100.0).verdict == "ready"


def test_an_event_time_after_now_is_clamped() -> None:
    """A changed_at later than the scan never makes the window start in the future."""
    t = SettleTracker(settle_seconds=1)
    d = t.observe(scan(("a", 1, 1)), now=10.0, changed_at=50.0)
    assert d.check_at == 11.0
    assert t.stable_since == 10.0


@pytest.mark.parametrize("lag_ms", [0, 20, 100, 250, 450, 700])
def test_slow_writer_with_late_events_is_never_ready_early(lag_ms: int) -> None:
    """A file growing every 300 ms (settle 500 ms) is ready only >= settle after its last write,
    at its final size, however late (up to beyond settle) its events reach the detector."""
    settle_ms, debounce_ms, every_ms, writes = 500, 50, 300, 8
    write_times = [k * every_ms for k in range(writes)]
    last_write = write_times[-1]
    t = SettleTracker(settle_seconds=settle_ms / 1000)
    last_event: float | None = None
    scan_at: int | None = None
    for now_ms in range(0, last_write + 5000):
        if any(w + lag_ms == now_ms for w in write_times):
            last_event = now_ms / 1000
            scan_at = now_ms + debounce_ms  # debounced scan after an event
        if scan_at is None or now_ms < scan_at:
            continue
        size = sum(1 for w in write_times if w <= now_ms)
        d = t.observe(scan(("f", size, size)), now=now_ms / 1000, changed_at=last_event)
        if d.verdict == "ready":
            assert size == writes
            assert now_ms >= last_write + settle_ms
            return
        assert d.check_at is not None
        scan_at = max(now_ms + 1, round(d.check_at * 1000))
    pytest.fail("never ready")


@pytest.mark.parametrize(
    ("s", "reason"),
    [
        (scan(("a", 1, 1), in_progress=("b.part",)), "in_progress"),
        (scan(), "empty"),
        (scan(("a", 1, 1), errors=("sub: permission denied",)), "unreadable"),
    ],
)
def test_incomplete_drops_are_blocked_with_backoff(s: Scan, reason: str) -> None:
    """Stable but incomplete drops never become ready; re-checks back off up to the cap."""
    t = SettleTracker(settle_seconds=1, max_backoff_s=8)
    t.observe(s, now=0.0)
    gaps = []
    now = 1.0
    for _ in range(6):
        d = t.observe(s, now=now)
        assert (d.verdict, d.reason) == ("blocked", reason)
        assert d.check_at is not None
        gaps.append(d.check_at - now)
        now = d.check_at
    assert gaps == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_marker_makes_a_clean_drop_ready_at_once() -> None:
    """With the marker present, one clean non-empty scan is enough (no settle wait)."""
    t = SettleTracker(settle_seconds=60, marker_required=True)
    d = t.observe(scan(("a", 1, 1)), now=0.0, marked=True)
    assert (d.verdict, d.reason) == ("ready", "marker")


def test_marker_still_needs_a_clean_non_empty_drop() -> None:
    """A marker does not override in-progress files or an empty folder."""
    t = SettleTracker(settle_seconds=1, marker_required=True)
    assert t.observe(scan(in_progress=("x.part",)), now=0.0, marked=True).verdict == "settling"
    assert t.observe(scan(in_progress=("x.part",)), now=2.0, marked=True).verdict == "blocked"
    assert t.observe(scan(), now=3.0, marked=True).verdict == "settling"


def test_marker_required_waits_for_the_marker() -> None:
    """When the rule names a marker, settling alone never makes a drop ready."""
    t = SettleTracker(settle_seconds=1, marker_required=True)
    s = scan(("a", 1, 1))
    t.observe(s, now=0.0)
    d = t.observe(s, now=5.0)
    assert (d.verdict, d.reason) == ("blocked", "no_marker")
    assert t.observe(s, now=6.0, marked=True).verdict == "ready"
