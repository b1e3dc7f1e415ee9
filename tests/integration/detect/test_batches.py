"""Files mode on real folders: loose files grouped into batch folders, each handed over once."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import wait_until
from tests.integration.detect.harness import (
    SETTLE,
    make_rule,
    rels,
    stays_false,
    write,
)


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


def test_files_mode_takes_a_folder_dropped_at_runtime_as_at_startup(watch: Path, start) -> None:
    """A folder moved into a files-mode watch while it runs is a drop, as one there at startup
    is: never silently skipped, whichever moment it arrives."""
    write(watch / "there-at-start" / "a.pdf", "a")
    running = start([make_rule(watch, drop="files")])
    wait_until(lambda: "there-at-start" in running.drops(), timeout=5, what="startup folder")
    staging = watch.parent / "staging" / "moved-in"
    write(staging / "b.pdf", "b")
    staging.rename(watch / "moved-in")
    wait_until(lambda: "moved-in" in running.drops(), timeout=5, what="runtime folder")
    assert rels(running.get("moved-in")) == ["b.pdf"]


def test_a_batch_name_that_looks_in_progress_falls_back_to_a_safe_name(watch: Path, start):
    """batch_name "{seq}.tmp" would never settle: the batch gets a safe name, with an error."""
    running = start([make_rule(watch, drop="files", batch_name="{seq}.tmp")])
    write(watch / "a.pdf", "a")
    wait_until(lambda: len(running.ready) == 1, timeout=5, what="the batch")
    (ready,) = running.ready
    assert ready.drop.startswith("batch-") and not ready.drop.endswith(".tmp")
    assert rels(ready) == ["a.pdf"]
