"""Files-mode grouping with an explicit clock: when loose files close as one batch."""

from __future__ import annotations

from watcher.fs.groups import GroupTracker, LooseFile


def loose(**files: int) -> dict[str, LooseFile]:
    return {name: LooseFile(size=size, mtime_ns=1) for name, size in files.items()}


def test_group_closes_after_settle_without_change() -> None:
    """Loose files close as one group once nothing changed for settle_seconds."""
    g = GroupTracker(settle_seconds=2, max_files=100)
    d = g.observe(loose(a=1, b=2), in_progress=False, now=0.0)
    assert (d.close, d.check_at) == ((), 2.0)
    d = g.observe(loose(a=1, b=2, c=3), in_progress=False, now=1.0)
    assert (d.close, d.check_at) == ((), 3.0)
    assert g.observe(loose(a=1, b=2, c=3), in_progress=False, now=2.5).close == ()
    d = g.observe(loose(a=1, b=2, c=3), in_progress=False, now=3.0)
    assert (d.close, d.check_at) == (("a", "b", "c"), None)
    assert g.pending == 0


def test_group_waits_for_in_progress_files_beside_it() -> None:
    """A .part next to the group keeps it open (it is about to join)."""
    g = GroupTracker(settle_seconds=1, max_files=100)
    g.observe(loose(a=1), in_progress=True, now=0.0)
    d = g.observe(loose(a=1), in_progress=True, now=5.0)
    assert d.close == ()
    assert d.check_at == 6.0
    assert g.observe(loose(a=1, b=1), in_progress=False, now=6.0).close == ()
    assert g.observe(loose(a=1, b=1), in_progress=False, now=7.0).close == ("a", "b")


def test_group_closes_early_at_max_files() -> None:
    """A steady stream closes batches of max_files settled files, oldest first."""
    g = GroupTracker(settle_seconds=1, max_files=2)
    g.observe(loose(a=1, b=1, c=1), in_progress=False, now=0.0)
    d = g.observe(loose(a=1, b=1, c=1, d=1), in_progress=False, now=1.0)
    assert d.close == ("a", "b")
    assert d.check_at == 1.0  # look again at once: c may be next
    d = g.observe(loose(c=1, d=1), in_progress=False, now=1.0)
    assert d.close == ()
    assert d.check_at == 2.0
    assert g.observe(loose(c=1, d=1), in_progress=False, now=2.0).close == ("c", "d")


def test_group_forgets_closed_files_and_starts_a_new_group() -> None:
    """Files arriving after a close form the next group; a changed file restarts its clock."""
    g = GroupTracker(settle_seconds=1, max_files=10)
    g.observe(loose(a=1), in_progress=False, now=0.0)
    assert g.observe(loose(a=1), in_progress=False, now=1.0).close == ("a",)
    g.observe(loose(b=1), in_progress=False, now=1.5)
    g.observe(loose(b=2), in_progress=False, now=2.0)  # still growing
    assert g.observe(loose(b=2), in_progress=False, now=2.6).close == ()
    assert g.observe(loose(b=2), in_progress=False, now=3.0).close == ("b",)


def test_empty_group_needs_no_timer() -> None:
    """Nothing loose: nothing to schedule."""
    g = GroupTracker(settle_seconds=1, max_files=10)
    assert g.observe({}, in_progress=True, now=0.0).check_at is None
