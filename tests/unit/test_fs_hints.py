"""Which event paths hint that a drop may have changed, and which are nothing to a drop."""

from __future__ import annotations

import pytest

from watcher.fs.hints import hint_for_path
from watcher.names import BATCH_TEMP_PREFIX

ROOT = "/srv/in"


def hint(path: str, *, is_directory: bool = False, files_mode: bool = False, marker=None):
    return hint_for_path(
        ROOT, path, is_directory=is_directory, files_mode=files_mode, marker=marker
    )


@pytest.mark.parametrize(
    ("path", "is_directory", "expected"),
    [
        ("/srv/in/scan-1", True, ("drop", "scan-1")),
        ("/srv/in/scan-1/a/b.pdf", False, ("drop", "scan-1")),
        ("/srv/in/.hidden/a.pdf", False, None),
        ("/srv/in/.hidden", True, None),
        ("/srv/in/copy.part", True, None),  # a folder still being written under a temp name
        ("/srv/in/loose.pdf", False, None),  # folder mode: a loose file is never a drop
        ("/srv/other/scan-1", True, None),
        ("/srv/in", True, None),
    ],
)
def test_folder_mode_hints(path: str, is_directory: bool, expected) -> None:
    """In folder mode only top-level folders (and what is inside them) hint at a drop."""
    assert hint(path, is_directory=is_directory) == expected


def test_ready_marker_hints_at_its_drop() -> None:
    """A `<drop>.ready` file hints at `<drop>`; the bare marker name hints at nothing."""
    assert hint("/srv/in/batch-7.ready", marker=".ready") == ("drop", "batch-7")
    assert hint("/srv/in/.ready", marker=".ready") is None


def test_files_mode_loose_files_hint_at_the_root() -> None:
    """In files mode a loose file at the top level wakes the group, not a drop."""
    assert hint("/srv/in/a.pdf", files_mode=True) == ("root", "")
    assert hint("/srv/in/20250101-1/a.pdf", files_mode=True) == ("drop", "20250101-1")


def test_our_batch_temp_folders_are_never_hints() -> None:
    """Filling a batch under its temp name makes no hint, in either mode."""
    temp = f"/srv/in/{BATCH_TEMP_PREFIX}x1y2"
    for files_mode in (False, True):
        assert hint(temp, is_directory=True, files_mode=files_mode) is None
        assert hint(f"{temp}/a.pdf", files_mode=files_mode) is None
