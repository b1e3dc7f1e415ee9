"""Folder drops on real folders and real observers: complete drops emitted once, never early."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

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
from watcher.detect import folders, timing
from watcher.fs import scan


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
    assert min(overheads) < timing.DEBOUNCE_S * 0.8, overheads


def test_burst_is_scanned_in_batches_and_the_scanner_idles(
    watch: Path, tmp_path: Path, start, monkeypatch
) -> None:
    """200 drops renamed in at once: each emitted once, scanned in far fewer thread hops than
    scans; afterwards the scanner waits without scanning."""
    calls: list[int] = []
    real = scan.scan_drops

    def counting(root: str, drops: Any, extra: Any, marker: Any) -> Any:
        calls.append(len(drops))
        return real(root, drops, extra, marker)

    monkeypatch.setattr(folders, "scan_drops", counting)  # where the drainer looks it up
    for i in range(200):
        write(tmp_path / "staging" / f"b{i:03d}" / "a.txt", str(i))
    running = start([make_rule(watch)])
    for i in range(200):
        (tmp_path / "staging" / f"b{i:03d}").rename(watch / f"b{i:03d}")
    wait_until(lambda: len(running.ready) == 200, timeout=15, what="200 drops")
    assert sorted(running.drops()) == [f"b{i:03d}" for i in range(200)]
    assert max(calls) <= timing.SCAN_BATCH
    assert sum(calls) >= 400  # two agreeing scans per drop
    # Batched: at most half as many thread hops as scans (unbatched, they would be equal).
    # The exact count depends on how the renames spread over loop turns on a busy machine.
    assert len(calls) * 2 <= sum(calls), calls
    settled = len(calls)
    assert stays_false(lambda: len(calls) != settled or len(running.ready) != 200, 3 * SETTLE)
    drops = running.detector._watchers["r"].folders  # reaching in: the drainer idles, alive
    assert drops.drainer is not None and not drops.drainer.done()
    assert not drops.scan_queue and not drops.pending


def test_a_failing_scan_is_retried_and_others_go_on(watch: Path, start, monkeypatch) -> None:
    """An unexpected error scanning one drop is logged and retried; its batch-mates carry on."""
    monkeypatch.setattr(timing, "ERROR_DELAY_S", 0.2)
    real = scan.scan_drop
    failing = {"bad"}

    def flaky(root: str, drop: str, **kwargs: Any) -> Any:
        if drop in failing:
            raise RuntimeError("boom")
        return real(root, drop, **kwargs)

    monkeypatch.setattr(scan, "scan_drop", flaky)
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
    pending = running.detector._watchers["r"].folders.pending  # reaching in: nothing may stay
    wait_until(lambda: "m" in pending, timeout=5, what="re-check after the marker went")
    wait_until(lambda: "m" not in pending, timeout=5, what="re-check parked")
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
