"""The paths of a drop: input_dir joins, the rendered output_dir, and its results file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config import Rule, clean_drop, input_dir_for, output_dir_for, results_path_for

NOW = datetime(2024, 3, 9, 14, 5, 7, tzinfo=UTC)


def rule(remote_dir: str = "acme/Finance/fs/Drive/drops", **kwargs: object) -> Rule:
    return Rule(
        name="invoices",
        watch=Path("/srv/drops"),
        remote_dir=remote_dir,
        deployment_id="dep-1",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("remote_dir", "drop", "expected"),
    [
        ("org/ws/fs/d", "batch1", "org/ws/fs/d/batch1"),
        ("org/ws/fs/d/", "batch1", "org/ws/fs/d/batch1"),
        ("org/ws/fs/d//", "batch1/", "org/ws/fs/d/batch1"),
        ("org/ws/fs/d", "2024/03/batch1", "org/ws/fs/d/2024/03/batch1"),
        ("org/ws/fs/d", "./batch1", "org/ws/fs/d/batch1"),
        ("org/ws/fs/d", "a//b/./c", "org/ws/fs/d/a/b/c"),
        ("org/ws/fs/d", "Rechnungen März ü", "org/ws/fs/d/Rechnungen März ü"),
        ("org/ws/fs/My Drive", "scan 01 (copy)", "org/ws/fs/My Drive/scan 01 (copy)"),
        ("org/ws/fs/d", "请求/文件", "org/ws/fs/d/请求/文件"),
        ("org/ws/fs/d", "..hidden", "org/ws/fs/d/..hidden"),
        ("org/ws/fs/d", "{rule}", "org/ws/fs/d/{rule}"),
    ],
)
def test_input_dir_for_joins_posix_paths(remote_dir: str, drop: str, expected: str) -> None:
    """input_dir = remote_dir + '/' + drop, with no '//' and no trailing '/'."""
    assert input_dir_for(rule(remote_dir), drop) == expected


@pytest.mark.parametrize("drop", ["", ".", "/", "/abs/drop", "../up", "a/../../b", "a/..", "./"])
def test_input_dir_for_refuses_escaping_drops(drop: str) -> None:
    """An empty, absolute or '..' drop raises ValueError instead of pointing elsewhere."""
    with pytest.raises(ValueError, match="drop"):
        input_dir_for(rule(), drop)


def test_clean_drop_normalises() -> None:
    """clean_drop drops empty and '.' segments and the trailing slash."""
    assert clean_drop("./a//b/") == "a/b"


def test_output_dir_for() -> None:
    """output_dir renders per drop; repeated slashes collapse; None when the rule has none."""
    r = rule(output_dir="acme/out//{rule}/{date:%Y}/{drop}/")
    assert output_dir_for(r, "sub/batch1/", now=NOW) == "acme/out/invoices/2024/sub/batch1"
    assert output_dir_for(rule(), "batch1", now=NOW) is None
    with pytest.raises(ValueError, match="drop"):
        output_dir_for(r, "../x", now=NOW)


def results_rule(results_dir: str | None) -> Rule:
    return rule(results_dir=results_dir)


@pytest.mark.parametrize(
    ("results_dir", "drop", "expected"),
    [
        ("/srv/results", "batch1", "/srv/results/batch1.json"),
        ("/srv/results/{rule}", "batch1/", "/srv/results/invoices/batch1.json"),
        ("/srv/results/{date}", "batch1", "/srv/results/2024-03-09/batch1.json"),
        ("/srv/results/{date:%Y/%m}", "b", "/srv/results/2024/03/b.json"),
        ("/srv/r-{date:%Y%m%d}/{rule}", "b", "/srv/r-20240309/invoices/b.json"),
        ("/srv/results", "2024/03/batch 1", "/srv/results/2024/03/batch 1.json"),
        ("/srv/results", "./a//b/", "/srv/results/a/b.json"),
        ("/srv/results/{drop}", "a/b", "/srv/results/a/b/a/b.json"),
        ("/srv//results/", "x", "/srv/results/x.json"),
        ("/srv/results", "Rechnungen März", "/srv/results/Rechnungen März.json"),
        ("/srv/results", "{rule}", "/srv/results/{rule}.json"),
    ],
)
def test_results_path_for(results_dir: str, drop: str, expected: str) -> None:
    """Results go to <rendered results_dir>/<drop>.json; a nested drop keeps its sub-folders."""
    assert results_path_for(results_rule(results_dir), drop, now=NOW) == Path(expected)


def test_results_path_for_without_results_dir() -> None:
    """A rule without results_dir saves no results: None."""
    assert results_path_for(results_rule(None), "batch1", now=NOW) is None


@pytest.mark.parametrize("drop", ["", "/abs/drop", "../up", "a/../../b"])
def test_results_path_for_refuses_escaping_drops(drop: str) -> None:
    """An empty, absolute or '..' drop raises ValueError instead of writing elsewhere."""
    with pytest.raises(ValueError, match="drop"):
        results_path_for(results_rule("/srv/results"), drop, now=NOW)


def test_results_path_for_refuses_a_rendered_dotdot() -> None:
    """A template whose real values render '..' (here {drop:.2}) raises instead of escaping."""
    with pytest.raises(ValueError, match=r"'\.\.' is not a folder name"):
        results_path_for(results_rule("/srv/results/{drop:.2}"), "..x", now=NOW)


@pytest.mark.parametrize("drop", ["a", "a/b", "..a", "a/..b/c", "x y/{date}", "-", "a/.b"])
def test_results_path_stays_inside_the_results_dir(drop: str) -> None:
    """Whatever the drop, the results file lies inside the rendered results folder."""
    path = results_path_for(results_rule("/srv/results/{rule}"), drop, now=NOW)
    assert path is not None
    assert path.is_relative_to("/srv/results/invoices")
    assert ".." not in path.parts
