"""A scan's fingerprint and totals: what two scans compare, and what a changed drop changes."""

from __future__ import annotations

import pytest

from watcher.model import FileEntry, Scan


def scan(*files: tuple[str, int, int], in_progress=(), errors=(), drop="d") -> Scan:
    return Scan(
        drop=drop,
        files=tuple(FileEntry(rel=r, size=s, mtime_ns=m) for r, s, m in sorted(files)),
        in_progress=tuple(in_progress),
        errors=tuple(errors),
    )


def test_fingerprint_is_stable() -> None:
    """Identical scans (even built separately) have the same fingerprint."""
    a = scan(("a.txt", 1, 10), ("b/c.txt", 0, 11))
    b = scan(("a.txt", 1, 10), ("b/c.txt", 0, 11))
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64


@pytest.mark.parametrize(
    "changed",
    [
        (("a.txt", 2, 10), ("b/c.txt", 0, 11)),  # size
        (("a.txt", 1, 12), ("b/c.txt", 0, 11)),  # mtime
        (("A.txt", 1, 10), ("b/c.txt", 0, 11)),  # name
        (("a.txt", 1, 10),),  # a file fewer
        (("a.txt", 1, 10), ("b/c.txt", 0, 11), ("d", 0, 1)),  # a file more
    ],
)
def test_fingerprint_is_sensitive(changed) -> None:
    """Any change of a name, size or mtime changes the fingerprint."""
    base = scan(("a.txt", 1, 10), ("b/c.txt", 0, 11))
    assert scan(*changed).fingerprint() != base.fingerprint()


def test_fingerprint_names_cannot_collide() -> None:
    """Names with separators or newlines cannot shift bytes from one field into another."""
    assert scan(("a\n1", 2, 3)).fingerprint() != scan(("a", 12, 3)).fingerprint()
    assert scan(("ab", 1, 1)).fingerprint() != scan(("a", 1, 1), ("b", 1, 1)).fingerprint()


def test_total_bytes_counts_empty_files() -> None:
    """total_bytes sums sizes; 0-byte files are still files."""
    s = scan(("a", 0, 1), ("b", 5, 1))
    assert s.total_bytes() == 5
    assert len(s.files) == 2
