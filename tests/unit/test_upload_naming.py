"""How an uploaded drop is named in AI Hub: flat, collision-free file names and its batch."""

from __future__ import annotations

from watcher.pipeline.naming import batch_name, naming_problem, remote_name


def test_nested_files_are_flattened_with_a_double_underscore():
    """scans/2026/a.pdf is uploaded as scans__2026__a.pdf; a top-level file keeps its name."""
    assert remote_name("scans/2026/a.pdf") == "scans__2026__a.pdf"
    assert remote_name("a.pdf") == "a.pdf"


def test_two_files_with_one_flat_name_are_a_clash():
    """a__b.pdf beside a/b.pdf, or names differing only in case, reject the drop, naming both."""
    problem = naming_problem(["a__b.pdf", "a/b.pdf"])
    assert problem is not None and "'a__b.pdf'" in problem and "'a/b.pdf'" in problem
    assert naming_problem(["Report.pdf", "report.PDF"]) is not None
    assert naming_problem(["a.pdf", "sub/a.pdf", "sub/b/a.pdf"]) is None


def test_a_name_over_255_bytes_is_refused():
    """The API's limit applies to the flattened name."""
    assert naming_problem(["d" * 200 + "/" + "f" * 60 + ".pdf"]) is not None


def test_the_batch_name_carries_rule_drop_and_id_and_fits_the_limit():
    """<rule>-<drop>-<drop id>, cut to 255 characters without losing the id."""
    assert batch_name("scans", "2026/box-1", "d-0123456789ab") == "scans-2026__box-1-d-0123456789ab"
    long = batch_name("r", "x" * 400, "d-0123456789ab")
    assert len(long) == 255 and long.endswith("-d-0123456789ab")
