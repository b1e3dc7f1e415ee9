"""One rule's watch: native and polling observers, rescans, the folder coming and going, reload."""

from __future__ import annotations

import errno
import shutil
import threading
from pathlib import Path

from structlog.testing import capture_logs

from tests.conftest import wait_until
from tests.integration.detect.harness import (
    SETTLE,
    events,
    make_rule,
    rels,
    stays_false,
    write,
)
from watcher.detect import timing
from watcher.fs import inotify, observers


def test_polling_observer(watch: Path, start) -> None:
    """observer: polling finds new drops and changes in submitted ones without watchdog."""
    running = start([make_rule(watch, observer="polling", poll_interval_seconds=0.2)])
    assert not [t for t in threading.enumerate() if "Inotify" in type(t).__name__]
    write(watch / "p1" / "a.txt", "a")
    first = wait_until(lambda: running.get("p1"), timeout=5, what="p1")
    write(watch / "p1" / "b.txt", "b")  # a file added to a submitted drop
    wait_until(lambda: len(running.ready) == 2, timeout=5, what="changed p1")
    second = running.ready[1]
    assert second.drop == "p1"
    assert rels(second) == ["a.txt", "b.txt"]
    assert second.scan.fingerprint() != first.scan.fingerprint()


def test_watch_limit_falls_back_to_polling(watch: Path, start, monkeypatch) -> None:
    """When inotify refuses watches (ENOSPC), the rule polls instead, with one warning."""

    class Exhausted(observers.InotifyWatch):
        def start(self) -> None:
            raise inotify.WatchLimitError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setitem(observers.OBSERVERS, "inotify", Exhausted)
    with capture_logs() as logs:
        running = start([make_rule(watch, poll_interval_seconds=0.2)])
        write(watch / "d" / "a.txt", "a")
        wait_until(lambda: running.get("d"), timeout=5, what="drop via polling")
    assert len(events(logs, "watch.fallback_polling")) == 1
    assert events(logs, "watch.attached")[0]["observer"] == "polling"


def test_watch_folder_appears_later_and_disappears(tmp_path: Path, start, monkeypatch) -> None:
    """A missing watch folder is waited for (one warning per disappearance) and re-attached."""
    monkeypatch.setattr(timing, "ROOT_CHECK_S", 0.2)
    watch = tmp_path / "later"
    with capture_logs() as logs:
        running = start([make_rule(watch)])  # startup completes although the folder is missing
        # Several root checks happen in this window: still exactly one warning.
        assert stays_false(lambda: len(events(logs, "watch.missing")) != 1, 1.0)
        write(watch / "first" / "a.txt", "a")
        wait_until(lambda: running.get("first"), timeout=5, what="first drop")
        shutil.rmtree(watch)
        wait_until(lambda: len(events(logs, "watch.missing")) == 2, timeout=5, what="2nd warning")
        assert stays_false(lambda: len(events(logs, "watch.missing")) != 2, 1.0)
        write(watch / "second" / "b.txt", "b")
        wait_until(lambda: running.get("second"), timeout=5, what="second drop")
    assert len(events(logs, "watch.missing")) == 2
    assert len(events(logs, "watch.attached")) == 2
    assert not events(logs, "detect.error")


def test_startup_scan_finds_drops_that_arrived_while_down(watch: Path, start) -> None:
    """Drops already there at startup are found by the startup scan; known ones are skipped."""
    for name in ("old-1", "old-2", "known"):
        write(watch / name / "f.txt", name)
    running = start([make_rule(watch)], is_known=lambda rule, drop: (rule, drop) == ("r", "known"))
    wait_until(lambda: len(running.ready) == 2, timeout=5, what="startup drops")
    assert sorted(running.drops()) == ["old-1", "old-2"]
    assert stays_false(lambda: running.get("known"), 3 * SETTLE)


def test_lost_events_are_caught_by_the_periodic_rescan(watch: Path, start) -> None:
    """With the observer paused (events lost), the next periodic rescan still finds the drop."""
    running = start([make_rule(watch, rescan_seconds=1.0)])
    rw = running.detector._watchers["r"]  # reaching in to simulate lost events
    rw.fsw._observer.unschedule_all()
    write(watch / "unseen" / "a.txt", "a")
    ready = wait_until(lambda: running.get("unseen"), timeout=5, what="rescan")
    assert rels(ready) == ["a.txt"]


def test_dead_observer_is_restarted_with_a_rescan(watch: Path, start, monkeypatch) -> None:
    """An observer thread that died is replaced and the folder rescanned."""
    monkeypatch.setattr(timing, "ROOT_CHECK_S", 0.2)
    with capture_logs() as logs:
        running = start([make_rule(watch)])
        observer = running.detector._watchers["r"].fsw._observer
        observer.stop()
        observer.join()
        write(watch / "after-crash" / "a.txt", "a")
        wait_until(lambda: running.get("after-crash"), timeout=5, what="drop after restart")
    assert len(events(logs, "watch.observer_failed")) == 1


def test_exactly_one_emit_per_drop_over_rescans(watch: Path, start) -> None:
    """Several rescans never emit a drop twice."""
    running = start([make_rule(watch)])
    for name in ("one", "two", "three"):
        write(watch / name / "f.txt", name)
    wait_until(lambda: len(running.ready) == 3, timeout=5, what="three drops")
    for _ in range(3):
        running.run_on_loop(running.detector.rescan_all)
    assert stays_false(lambda: len(running.ready) > 3, 4 * SETTLE)
    assert sorted(running.drops()) == ["one", "three", "two"]


def test_update_rules_starts_stops_and_restarts(tmp_path: Path, start) -> None:
    """Hot reload: an added rule is watched, a removed one is not, a changed one restarts."""
    wa, wb = tmp_path / "a", tmp_path / "b"
    wa.mkdir()
    wb.mkdir()
    rule_a, rule_b = make_rule(wa, name="a"), make_rule(wb, name="b")
    running = start([rule_a])
    write(wa / "a1" / "f", "x")
    wait_until(lambda: running.get("a1"), timeout=5, what="a1")
    running.run_on_loop(lambda: running.detector.update_rules([rule_a, rule_b]))
    write(wb / "b1" / "f", "x")
    wait_until(lambda: running.get("b1"), timeout=5, what="b1")
    running.run_on_loop(
        lambda: running.detector.update_rules([make_rule(wb, name="b", settle_seconds=0.2)])
    )
    write(wa / "a2" / "f", "x")
    write(wb / "b2" / "f", "x")
    wait_until(lambda: running.get("b2"), timeout=5, what="b2 after restart")
    assert stays_false(lambda: running.get("a2"), 3 * SETTLE)
    assert sorted(running.drops()) == ["a1", "b1", "b2"]
