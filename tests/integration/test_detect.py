"""Detection on real folders, real watchdog observers: complete drops emitted once, never early."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.conftest import wait_until
from watcher import detect, fswatch
from watcher.config import Rule
from watcher.detect import Detector
from watcher.model import ReadyDrop

SETTLE = 0.3
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_rule(watch: Path, **overrides: Any) -> Rule:
    fields: dict[str, Any] = {
        "name": "r",
        "watch": watch,
        "remote_dir": "/remote/in",
        "deployment_id": "dep-1",
        "settle_seconds": SETTLE,
    }
    fields.update(overrides)
    return Rule(**fields)


class Running:
    """A Detector on its own asyncio loop in a background thread, collecting emitted drops."""

    def __init__(
        self,
        rules: list[Rule],
        *,
        is_known: Callable[[str, str], bool] | None = None,
        emit_delay: float = 0.0,
    ) -> None:
        self.rules = rules
        self.ready: list[ReadyDrop] = []
        self.emit_started: list[float] = []
        self.emit_finished: list[float] = []
        self.emit_delay = emit_delay
        # Like the pipeline: the ledger knows every drop handed over before.
        self.is_known = is_known or (lambda rule, drop: (rule, drop) in self.emitted_keys())
        self.detector: Detector | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._thread_main, name="detector-loop")
        self._thread.start()
        assert self._up.wait(10), "detector loop did not start"

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._up.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.detector = Detector(self.rules, is_known=self.is_known)
        self._stop = asyncio.Event()
        task = asyncio.create_task(self.detector.run(self._emit))
        self._up.set()
        await self._stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _emit(self, ready: ReadyDrop) -> None:
        with self._lock:
            self.emit_started.append(time.monotonic())
            self.ready.append(ready)
        if self.emit_delay:
            await asyncio.sleep(self.emit_delay)
        with self._lock:
            self.emit_finished.append(time.monotonic())

    def emitted_keys(self) -> set[tuple[str, str]]:
        with self._lock:
            return {(r.rule, r.drop) for r in self.ready}

    def drops(self) -> list[str]:
        with self._lock:
            return [r.drop for r in self.ready]

    def get(self, drop: str) -> ReadyDrop | None:
        with self._lock:
            return next((r for r in self.ready if r.drop == drop), None)

    def wait_startup(self) -> None:
        wait_until(
            lambda: self.detector is not None and self.detector.startup_scan_done.is_set(),
            timeout=10,
            what="startup scan",
        )

    def run_on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function or coroutine function on the detector's loop, return its result."""
        assert self.loop is not None

        async def call() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=30)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "detector loop did not stop"
        if self._error is not None:
            raise self._error


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def _start(rules: list[Rule], **kwargs: Any) -> Running:
        running = Running(rules, **kwargs)
        started.append(running)
        running.wait_startup()
        return running

    yield _start
    for running in started:
        running.stop()


@pytest.fixture
def watch(tmp_path: Path) -> Path:
    w = tmp_path / "watch"
    w.mkdir()
    return w


def write(path: Path, data: bytes | str = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def rels(ready: ReadyDrop) -> list[str]:
    return [f.rel for f in ready.scan.files]


def stays_false(predicate: Callable[[], Any], seconds: float) -> bool:
    """True if `predicate` stays falsy for `seconds` (for asserting that nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return False
        time.sleep(0.02)
    return not predicate()


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


# --- when is a drop complete ---------------------------------------------------------------


def test_slow_writer_is_not_ready_until_it_stops(watch: Path, start) -> None:
    """A file growing every 0.3 s for 4x settle is emitted only once it stops, at its final size."""
    settle = 0.5
    running = start([make_rule(watch, settle_seconds=settle)])
    target = watch / "scan-001" / "pages.pdf"
    write(target, b"")
    deadline = time.monotonic() + 4 * settle
    size = 0
    while time.monotonic() < deadline:
        with target.open("ab") as fh:
            fh.write(b"p" * 1000)
        size += 1000
        time.sleep(0.3)
        assert running.drops() == [], "emitted while the file was still growing"
    ready = wait_until(lambda: running.get("scan-001"), timeout=5, what="slow drop")
    assert [(f.rel, f.size) for f in ready.scan.files] == [("pages.pdf", size)]


def test_part_file_then_rename(watch: Path, start) -> None:
    """A drop holding a .part file waits; the rename to the final name completes it."""
    running = start([make_rule(watch)])
    write(watch / "dl" / "done.txt", "a")
    part = write(watch / "dl" / "report.pdf.part", "partial")
    assert stays_false(running.drops, 4 * SETTLE)
    part.rename(watch / "dl" / "report.pdf")
    ready = wait_until(lambda: running.get("dl"), timeout=5, what="dl")
    assert rels(ready) == ["done.txt", "report.pdf"]
    assert ready.scan.in_progress == ()


def test_rsync_temp_then_rename(watch: Path, start) -> None:
    """rsync's hidden `.name.XXXXXX` temp file means not ready; its rename completes the drop."""
    running = start([make_rule(watch)])
    tmp = write(watch / "sync" / ".invoice.pdf.Ab12Cd", "data")
    write(watch / "sync" / ".DS_Store", "hidden, ignored")
    assert stays_false(running.drops, 4 * SETTLE)
    tmp.rename(watch / "sync" / "invoice.pdf")
    ready = wait_until(lambda: running.get("sync"), timeout=5, what="sync")
    assert rels(ready) == ["invoice.pdf"]


def test_mkdir_p_with_files_written_at_once(watch: Path, start) -> None:
    """`mkdir -p a/b/c` and files written immediately (the inotify race) give one full drop."""
    running = start([make_rule(watch)])
    (watch / "a" / "b" / "c").mkdir(parents=True)
    for rel in ("a/1.txt", "a/b/2.txt", "a/b/c/3.txt"):
        write(watch / rel, rel)
    ready = wait_until(lambda: running.get("a"), timeout=5, what="a")
    assert rels(ready) == ["1.txt", "b/2.txt", "b/c/3.txt"]


def test_tree_copied_in(watch: Path, tmp_path: Path, start) -> None:
    """A tree copied in with `cp -r` is emitted once, complete."""
    src = tmp_path / "src"
    expected = []
    for d in ("", "x", "x/y", "z"):
        for i in range(15):
            rel = f"{d}/f{i}.bin" if d else f"f{i}.bin"
            write(src / rel, os.urandom(2000))
            expected.append(rel)
    running = start([make_rule(watch)])
    shutil.copytree(src, watch / "copied")
    ready = wait_until(lambda: running.get("copied"), timeout=5, what="copied")
    assert rels(ready) == sorted(expected)
    assert ready.scan.total_bytes() == 60 * 2000
    assert stays_false(lambda: len(running.ready) > 1, 3 * SETTLE)


def test_atomic_move_of_a_complete_folder(watch: Path, tmp_path: Path, start) -> None:
    """A complete folder renamed into watch is emitted right after one settle period."""
    staging = tmp_path / "staging" / "batch-9"
    for i in range(5):
        write(staging / f"doc{i}.pdf", "d" * i)
    with capture_logs() as logs:
        running = start([make_rule(watch)])
        moved_at = time.monotonic()
        staging.rename(watch / "batch-9")
        ready = wait_until(lambda: running.get("batch-9"), timeout=5, what="batch-9")
    assert len(ready.scan.files) == 5
    assert time.monotonic() - moved_at < SETTLE + 2.0
    assert events(logs, "drop.complete") == [
        {
            "event": "drop.complete",
            "log_level": "debug",
            "rule": "r",
            "drop": "batch-9",
            "files": 5,
            "bytes": 10,
            "fingerprint": ready.scan.fingerprint()[:16],
            "settle_seconds": SETTLE,
            "reason": "ready",
        }
    ]


def test_moved_in_drop_is_ready_settle_after_its_event(watch: Path, tmp_path: Path, start) -> None:
    """Settling counts from the rename event, not from the debounced first scan."""
    running = start([make_rule(watch)])
    moved: dict[str, float] = {}
    for i in range(5):
        write(tmp_path / "staging" / f"m{i}" / "a.pdf", "a")
    for i in range(5):
        moved[f"m{i}"] = time.monotonic()
        (tmp_path / "staging" / f"m{i}").rename(watch / f"m{i}")
        wait_until(lambda i=i: running.get(f"m{i}"), timeout=5, what=f"m{i}")
    with running._lock:
        overheads = [
            start_t - moved[r.drop] - SETTLE
            for r, start_t in zip(running.ready, running.emit_started, strict=True)
        ]
    assert min(overheads) >= 0.0  # never before settle_seconds of quiet
    # The debounce (50 ms) no longer adds to it: at least one of five well below it.
    assert min(overheads) < detect.DEBOUNCE_S * 0.8, overheads


def test_burst_is_scanned_in_batches_and_the_scanner_idles(
    watch: Path, tmp_path: Path, start, monkeypatch
) -> None:
    """200 drops renamed in at once: each emitted once, scanned in far fewer thread hops than
    scans; afterwards the scanner waits without scanning."""
    calls: list[int] = []
    real = detect._scan_many

    def counting(root: str, drops: Any, extra: Any, marker: Any) -> Any:
        calls.append(len(drops))
        return real(root, drops, extra, marker)

    monkeypatch.setattr(detect, "_scan_many", counting)
    for i in range(200):
        write(tmp_path / "staging" / f"b{i:03d}" / "a.txt", str(i))
    running = start([make_rule(watch)])
    for i in range(200):
        (tmp_path / "staging" / f"b{i:03d}").rename(watch / f"b{i:03d}")
    wait_until(lambda: len(running.ready) == 200, timeout=15, what="200 drops")
    assert sorted(running.drops()) == [f"b{i:03d}" for i in range(200)]
    assert max(calls) <= detect.SCAN_BATCH
    assert sum(calls) >= 400  # two agreeing scans per drop
    # Batched: at most half as many thread hops as scans (unbatched, they would be equal).
    # The exact count depends on how the renames spread over loop turns on a busy machine.
    assert len(calls) * 2 <= sum(calls), calls
    settled = len(calls)
    assert stays_false(lambda: len(calls) != settled or len(running.ready) != 200, 3 * SETTLE)
    rw = running.detector._watches["r"]  # reaching in: the drainer is alive and waiting
    assert rw.drainer is not None and not rw.drainer.done()
    assert not rw.scan_queue and not rw.pending


def test_a_failing_scan_is_retried_and_others_go_on(watch: Path, start, monkeypatch) -> None:
    """An unexpected error scanning one drop is logged and retried; its batch-mates carry on."""
    monkeypatch.setattr(detect, "ERROR_DELAY_S", 0.2)
    real = detect.scan_drop
    failing = {"bad"}

    def flaky(root: str, drop: str, **kwargs: Any) -> Any:
        if drop in failing:
            raise RuntimeError("boom")
        return real(root, drop, **kwargs)

    monkeypatch.setattr(detect, "scan_drop", flaky)
    with capture_logs() as logs:
        running = start([make_rule(watch)])
        write(watch / "bad" / "a.txt", "a")
        write(watch / "good" / "b.txt", "b")
        wait_until(lambda: running.get("good"), timeout=5, what="good drop")
        wait_until(lambda: events(logs, "detect.error"), timeout=5, what="detect.error")
        assert running.drops() == ["good"]
        failing.clear()
        wait_until(lambda: running.get("bad"), timeout=5, what="bad drop after the fault")
    errors = events(logs, "detect.error")
    assert {e["drop"] for e in errors} == {"bad"}
    assert sorted(running.drops()) == ["bad", "good"]


def test_ready_marker(watch: Path, start) -> None:
    """With ready_marker, `<drop>.ready` makes the drop ready at once; its path is reported."""
    running = start([make_rule(watch, ready_marker=".ready", settle_seconds=30)])
    write(watch / "batch-7" / "a.pdf", "a")
    write(watch / "batch-8" / "b.pdf", "b")
    marker = write(watch / "batch-7.ready", "")
    written = time.monotonic()
    ready = wait_until(lambda: running.get("batch-7"), timeout=5, what="batch-7")
    assert time.monotonic() - written < 3.0  # far below settle_seconds=30
    assert ready.marker == marker
    assert rels(ready) == ["a.pdf"]
    # Without its marker, batch-8 waits (settling alone is not enough when a marker is configured).
    assert stays_false(lambda: running.get("batch-8"), 1.0)
    assert running.drops() == ["batch-7"]


def test_marker_removed_after_submission_is_quiet(watch: Path, start) -> None:
    """Removing the marker after hand-over (as the pipeline does) re-emits and polls nothing."""
    running = start([make_rule(watch, ready_marker=".ready")])
    write(watch / "m" / "a.pdf", "a")
    marker = write(watch / "m.ready", "")
    wait_until(lambda: running.get("m"), timeout=5, what="marked drop")
    marker.unlink()
    rw = running.detector._watches["r"]  # reaching in: nothing may stay scheduled for "m"
    wait_until(lambda: "m" in rw.pending, timeout=5, what="re-check after the marker went")
    wait_until(lambda: "m" not in rw.pending, timeout=5, what="re-check parked")
    assert stays_false(lambda: len(running.ready) > 1, 3 * SETTLE)


def test_marker_does_not_override_in_progress(watch: Path, start) -> None:
    """A marker on a drop that still holds a .part waits for the .part to go."""
    running = start([make_rule(watch, ready_marker=".done", settle_seconds=30)])
    part = write(watch / "m" / "x.bin.part", "x")
    write(watch / "m.done", "")
    assert stays_false(running.drops, 1.0)
    part.rename(watch / "m" / "x.bin")
    ready = wait_until(lambda: running.get("m"), timeout=5, what="m")
    assert ready.marker == watch / "m.done"


def test_empty_folder_never_completes(watch: Path, start) -> None:
    """An empty folder is never emitted; once a file lands it is."""
    running = start([make_rule(watch)])
    (watch / "empty").mkdir()
    assert stays_false(running.drops, 5 * SETTLE)
    write(watch / "empty" / "now.txt", "")
    ready = wait_until(lambda: running.get("empty"), timeout=5, what="filled folder")
    assert [(f.rel, f.size) for f in ready.scan.files] == [("now.txt", 0)]


def test_drop_deleted_while_settling(watch: Path, start) -> None:
    """A drop removed mid-settle is forgotten with one info line; detection carries on."""
    with capture_logs() as logs:
        running = start([make_rule(watch, settle_seconds=1.0)])
        write(watch / "doomed" / "a.txt", "a")
        wait_until(lambda: events(logs, "drop.detected"), timeout=5, what="drop.detected")
        shutil.rmtree(watch / "doomed")
        wait_until(lambda: events(logs, "drop.vanished"), timeout=5, what="drop.vanished")
        write(watch / "after" / "b.txt", "b")
        wait_until(lambda: running.get("after"), timeout=5, what="drop after deletion")
    assert running.drops() == ["after"]
    vanished = events(logs, "drop.vanished")
    assert vanished == [
        {"event": "drop.vanished", "log_level": "info", "rule": "r", "drop": "doomed"}
    ]
    assert not events(logs, "detect.error")


def test_drop_renamed_while_settling(watch: Path, start) -> None:
    """A drop renamed mid-settle is emitted once, under its new name only."""
    running = start([make_rule(watch, settle_seconds=0.6)])
    write(watch / "old-name" / "a.txt", "a")
    time.sleep(0.1)  # let the first scan start settling the old name (not a synchronisation)
    (watch / "old-name").rename(watch / "new-name")
    wait_until(lambda: running.get("new-name"), timeout=5, what="renamed drop")
    assert stays_false(lambda: running.get("old-name"), 3 * SETTLE)
    assert running.drops() == ["new-name"]


# --- files mode ----------------------------------------------------------------------------


def test_files_mode_groups_and_a_second_group_during_submission(watch: Path, start) -> None:
    """Loose files become a batch folder; files arriving while it is handed over form the next."""
    running = start([make_rule(watch, drop="files")], emit_delay=1.5)
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        write(watch / name, name)
    wait_until(lambda: running.emit_started, timeout=5, what="first batch handed over")
    assert not running.emit_finished
    for name in ("d.pdf", "e.pdf"):
        write(watch / name, name)
    wait_until(lambda: len(running.ready) == 2, timeout=5, what="second batch")
    first, second = running.ready
    assert rels(first) == ["a.pdf", "b.pdf", "c.pdf"]
    assert rels(second) == ["d.pdf", "e.pdf"]
    # The second batch did not wait for the first hand-over to finish.
    wait_until(lambda: len(running.emit_finished) == 2, timeout=5, what="hand-overs done")
    assert running.emit_started[1] < running.emit_finished[0]
    assert first.drop != second.drop and first.marker is None
    for ready in (first, second):
        assert sorted(p.name for p in (watch / ready.drop).iterdir()) == rels(ready)
    assert sorted(p.name for p in watch.iterdir()) == sorted([first.drop, second.drop])
    # Our own batch folders are never detected again as new drops.
    running.run_on_loop(running.detector.rescan_all)
    assert stays_false(lambda: len(running.ready) > 2, 4 * SETTLE)


def test_files_mode_closes_at_max_files(watch: Path, start) -> None:
    """With max_files=2, five loose files become batches of 2, 2 and 1."""
    running = start([make_rule(watch, drop="files", max_files=2, settle_seconds=0.5)])
    for i in range(5):
        write(watch / f"f{i}.txt", str(i))
    wait_until(lambda: len(running.ready) == 3, timeout=6, what="three batches")
    sizes = sorted(len(r.scan.files) for r in running.ready)
    assert sizes == [1, 2, 2]
    assert sorted(rel for r in running.ready for rel in rels(r)) == [f"f{i}.txt" for i in range(5)]


def test_files_mode_startup_keeps_existing_batches(watch: Path, start) -> None:
    """At startup, existing sub-folders of a files-mode watch are drops (crash after move)."""
    write(watch / "20250101-000000-1" / "a.txt", "a")
    write(watch / "20250101-000000-2" / "b.txt", "b")
    write(watch / ".aihub-batch-x1y2" / "c.txt", "c")  # a crash mid-move
    known = {("r", "20250101-000000-2")}
    running = start(
        [make_rule(watch, drop="files")], is_known=lambda rule, drop: (rule, drop) in known
    )
    wait_until(lambda: len(running.ready) == 2, timeout=5, what="orphan batches")
    names = sorted(running.drops())
    assert names[0] == "20250101-000000-1"
    assert rels(running.get(names[1])) == ["c.txt"]
    assert not (watch / ".aihub-batch-x1y2").exists()
    assert stays_false(lambda: len(running.ready) > 2, 3 * SETTLE)


# --- observers, rescans, the watch folder --------------------------------------------------


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

    class Exhausted(fswatch.InotifyWatch):
        def start(self) -> None:
            raise fswatch.WatchLimitError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setitem(fswatch.OBSERVERS, "inotify", Exhausted)
    with capture_logs() as logs:
        running = start([make_rule(watch, poll_interval_seconds=0.2)])
        write(watch / "d" / "a.txt", "a")
        wait_until(lambda: running.get("d"), timeout=5, what="drop via polling")
    assert len(events(logs, "watch.fallback_polling")) == 1
    assert events(logs, "watch.attached")[0]["observer"] == "polling"


def test_watch_folder_appears_later_and_disappears(tmp_path: Path, start, monkeypatch) -> None:
    """A missing watch folder is waited for (one warning per disappearance) and re-attached."""
    monkeypatch.setattr(detect, "ROOT_CHECK_S", 0.2)
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
    rw = running.detector._watches["r"]  # reaching in to simulate lost events
    rw.fsw._observer.unschedule_all()
    write(watch / "unseen" / "a.txt", "a")
    ready = wait_until(lambda: running.get("unseen"), timeout=5, what="rescan")
    assert rels(ready) == ["a.txt"]


def test_dead_observer_is_restarted_with_a_rescan(watch: Path, start, monkeypatch) -> None:
    """An observer thread that died is replaced and the folder rescanned."""
    monkeypatch.setattr(detect, "ROOT_CHECK_S", 0.2)
    with capture_logs() as logs:
        running = start([make_rule(watch)])
        observer = running.detector._watches["r"].fsw._observer
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


# --- odd names, links, permissions, size ---------------------------------------------------


def test_names_with_spaces_unicode_and_newlines(watch: Path, start) -> None:
    """Spaces, unicode and newlines in folder and file names are handled; 0-byte files count."""
    running = start([make_rule(watch)])
    drop = "Scans März 日本\nline two"
    names = ["a b.pdf", "ü✓.txt", "new\nline.txt", "zero"]
    for name in names:
        write(watch / drop / name, "" if name == "zero" else name)
    ready = wait_until(lambda: running.get(drop), timeout=5, what="odd names")
    assert rels(ready) == sorted(names)
    assert {f.rel: f.size for f in ready.scan.files}["zero"] == 0


def test_symlinks_are_never_followed(watch: Path, tmp_path: Path, start) -> None:
    """Symlinks inside a drop (and at the top level) are skipped, never followed out of watch."""
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "s")
    running = start([make_rule(watch)])
    write(watch / "linked" / "real.txt", "r")
    (watch / "linked" / "to-dir").symlink_to(outside, target_is_directory=True)
    (watch / "linked" / "to-file").symlink_to(outside / "secret.txt")
    (watch / "top-link").symlink_to(outside, target_is_directory=True)
    ready = wait_until(lambda: running.get("linked"), timeout=5, what="linked")
    assert rels(ready) == ["real.txt"]
    assert ready.scan.skipped == ("to-dir", "to-file")
    assert stays_false(lambda: running.get("top-link"), 3 * SETTLE)


def test_ten_thousand_files_in_one_drop(watch: Path, tmp_path: Path, start) -> None:
    """A drop of 10,000 (0-byte) files is emitted once, complete."""
    running = start([make_rule(watch)])
    big = watch / "big"
    big.mkdir()
    for i in range(10_000):
        (big / f"page-{i:05d}.tif").touch()
    ready = wait_until(lambda: running.get("big"), timeout=15, what="big drop")
    assert len(ready.scan.files) == 10_000
    assert ready.scan.total_bytes() == 0
    assert stays_false(lambda: len(running.ready) > 1, 3 * SETTLE)


_UNREADABLE_SCRIPT = r"""
import asyncio, concurrent.futures.thread, json, os, sys, time
from pathlib import Path
from structlog.testing import capture_logs
from watcher.config import Rule
from watcher.detect import Detector

if os.geteuid() == 0:
    # chmod does not stop root: become `nobody` once everything is imported (the interpreter
    # lives under /root, which `nobody` cannot read).
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)

async def main():
    rule = Rule(name="r", watch=Path(sys.argv[1]), remote_dir="/in", deployment_id="d",
                settle_seconds=0.3)
    emitted = []
    async def emit(ready):
        emitted.append(ready.drop)
    det = Detector([rule], is_known=lambda r, d: False)
    with capture_logs() as logs:
        task = asyncio.create_task(det.run(emit))
        deadline = time.monotonic() + 10
        while "open" not in emitted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    print(json.dumps({"emitted": emitted, "events": [e["event"] for e in logs],
                      "unreadable": [e for e in logs if e["event"] == "drop.unreadable"]}))

asyncio.run(main())
"""


def test_permission_denied_folder_is_not_ready(tmp_path: Path) -> None:
    """An unreadable folder inside a drop keeps it from being ready, logged once; others go on.

    chmod does not stop root, so the detector runs in a subprocess that drops to `nobody`.
    """
    base = Path(tempfile.mkdtemp(prefix="detect-perm-"))
    try:
        base.chmod(0o755)
        watch = base / "watch"
        write(watch / "open" / "a.txt", "a")
        write(watch / "locked" / "b.txt", "b")
        write(watch / "locked" / "secret" / "c.txt", "c")
        for p in (watch, watch / "open", watch / "locked"):
            p.chmod(0o755)
        (watch / "locked" / "secret").chmod(0o000)
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(
            [sys.executable, "-c", _UNREADABLE_SCRIPT, str(watch)],
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
            env=env,
            cwd="/",
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["emitted"] == ["open"]
        assert len(result["unreadable"]) == 1
        entry = result["unreadable"][0]
        assert (entry["drop"], entry["error"]) == ("locked", "secret: permission denied")
        assert "detect.error" not in result["events"]
    finally:
        (base / "watch" / "locked" / "secret").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
