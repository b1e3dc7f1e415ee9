"""diff_configs for reloads, and the rule table that `check` prints."""

from __future__ import annotations

from pathlib import Path

from tests.unit.config_helpers import HEAD, RULE_A, RULE_B, load
from watcher.config import ConfigDiff, diff_configs, summary_table


def test_diff_configs(tree: Path) -> None:
    """diff_configs names added, removed and changed rules, and hub or top-level changes."""
    old = load(tree, HEAD + RULE_A + RULE_B)
    assert diff_configs(old, old) == ConfigDiff()
    text = HEAD.replace("/api", "/v2api") + "log_level: debug\n"
    text += RULE_A.replace("dep-1", "dep-9") + RULE_B.replace("name: b", "name: c")
    new = load(tree, text)
    diff = diff_configs(old, new)
    assert (diff.added, diff.removed, diff.changed) == (("c",), ("b",), ("a",))
    assert diff.hub_changed
    assert diff.top_level_changed == ("log_level",)
    assert diff.log_fields()["rules_added"] == ["c"]
    reordered = load(tree, HEAD + "rules:\n" + RULE_B + RULE_A.removeprefix("rules:\n"))
    assert diff_configs(old, reordered) == ConfigDiff()


def test_summary_table_is_aligned(tree: Path) -> None:
    """summary_table has a header, a rule line and one aligned row per rule."""
    config = load(tree, HEAD + RULE_A + RULE_B + "    drop: files\n    settle_seconds: 0.5\n")
    lines = summary_table(config).splitlines()
    assert lines[0].split() == ["rule", "watch", "remote_dir", "deployment", "drop", "settle"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["a", str(tree / "a"), "org/ws/fs/drive/a", "dep-1", "folder", "5s"]
    assert lines[3].split() == ["b", str(tree / "b"), "org/ws/fs/drive/b", "dep-2", "files", "0.5s"]
    starts = [line.index("dep") if "dep" in line else None for line in lines[2:]]
    assert starts[0] == starts[1] == lines[0].index("deployment")
