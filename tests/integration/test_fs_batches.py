"""Files-mode batch folders on a real folder: filled under a temp name, recovered after a crash."""

from __future__ import annotations

import os
from pathlib import Path

from watcher.fs.batches import move_into_batch, recover_batch
from watcher.fs.scan import list_root
from watcher.names import BATCH_TEMP_PREFIX


def names(attempt: int) -> str:
    return "batch-1" if attempt == 0 else f"batch-1-{attempt + 1}"


def test_move_into_batch_renames_a_complete_folder_into_place(tmp_path: Path) -> None:
    """Loose files end up in one new folder with their sizes; gone ones are listed as missing."""
    for name in ("a.pdf", "b.pdf"):
        (tmp_path / name).write_text(name)
    (tmp_path / "batch-1").mkdir()  # taken: the next proposed name is used
    batch = move_into_batch(str(tmp_path), ["a.pdf", "b.pdf", "gone.pdf"], name_for=names)
    assert batch is not None and batch.scan is not None
    assert (batch.name, batch.moved, batch.missing) == (
        "batch-1-2",
        ("a.pdf", "b.pdf"),
        ("gone.pdf",),
    )
    assert [(f.rel, f.size) for f in batch.scan.files] == [("a.pdf", 5), ("b.pdf", 5)]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(BATCH_TEMP_PREFIX)]


def test_a_crash_mid_move_leaves_an_orphan_that_is_recovered(tmp_path: Path) -> None:
    """A leftover temp folder is listed as an orphan, never a drop, and finished as a batch."""
    orphan = tmp_path / f"{BATCH_TEMP_PREFIX}x1y2"
    orphan.mkdir()
    (orphan / "c.pdf").write_text("c")
    (tmp_path / f"{BATCH_TEMP_PREFIX}empty").mkdir()
    listing = list_root(str(tmp_path))
    assert listing.orphans == (f"{BATCH_TEMP_PREFIX}empty", orphan.name)
    assert dict(listing.dirs) == {}
    recovered = [
        recover_batch(str(tmp_path), str(tmp_path / name), name_for=names)
        for name in listing.orphans
    ]
    assert recovered == [None, "batch-1"]
    assert sorted(os.listdir(tmp_path)) == ["batch-1"]
    assert os.listdir(tmp_path / "batch-1") == ["c.pdf"]
