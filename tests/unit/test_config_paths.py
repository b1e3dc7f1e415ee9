"""The AI Hub paths of a drop: input_dir joins and the rendered output_dir."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config import Rule, clean_drop, input_dir_for, output_dir_for

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
