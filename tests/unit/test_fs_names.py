"""In-progress and hidden names: what a file name alone says about a drop."""

from __future__ import annotations

import pytest

from watcher.names import IN_PROGRESS_PATTERNS, is_hidden, is_in_progress


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf.part", True),
        ("report.PDF.PART", True),
        ("movie.mkv.partial", True),
        ("x.tmp", True),
        ("setup.exe.crdownload", True),
        ("file.download", True),
        ("a.filepart", True),
        ("~$budget.xlsx", True),
        (".~lock.budget.xlsx#", True),
        (".notes.txt.swp", True),
        (".syncthing.photo.jpg.tmp", True),
        (".report.pdf.Ab12Cd", True),  # rsync temporary
        (".a.b.c.XYZ789", True),
        ("report.pdf", False),
        ("part", False),
        ("tmp.txt", False),
        (".DS_Store", False),
        (".report.pdf.Ab12C", False),  # 5 characters: not rsync's pattern
        (".report.pdf.Ab12Cde", False),  # 7 characters
        ("report.Ab12Cd", False),  # no leading dot
        ("~budget.xlsx", False),
        ("weird\nname.pdf", False),
        ("weird\nname.part", True),
    ],
)
def test_in_progress_patterns(name: str, expected: bool) -> None:
    """Each built-in pattern (and the rsync temp shape) marks a name as still being written."""
    assert is_in_progress(name) is expected


def test_extra_globs_count_as_in_progress() -> None:
    """A rule's `ignore` globs are added to the built-in in-progress patterns."""
    assert not is_in_progress("job.lock")
    assert is_in_progress("job.lock", ["*.lock"])
    assert is_in_progress("JOB.LOCK", ("*.lock",))
    assert "*.part" in IN_PROGRESS_PATTERNS


def test_hidden_names() -> None:
    """Names starting with a dot are hidden; others are not."""
    assert is_hidden(".DS_Store")
    assert not is_hidden("a.txt")
