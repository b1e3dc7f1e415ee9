"""active_hours, tz and priority in the config: parsed into the Rule, mistakes at their line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.config_helpers import HEAD, RULE_A, RULE_B, issues_of, load
from watcher.config import Rule
from watcher.config.schedule import is_open, next_opening, parse_schedule


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return tmp_path


def test_a_rule_carries_its_schedule_in_its_zone_and_its_priority(tree: Path):
    """active_hours + tz become one Schedule on the Rule; priority defaults to 0."""
    text = (
        HEAD
        + RULE_A
        + '    active_hours: "Mon-Fri 07:00-19:00"\n    tz: Asia/Tokyo\n    priority: 5\n'
        + RULE_B
    )
    a, b = load(tree, text).rules
    assert a.active_hours is not None and a.active_hours.tz == "Asia/Tokyo"
    assert a.priority == 5 and b.priority == 0 and b.active_hours is None and b.tz is None
    sunday = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert next_opening(a.active_hours, sunday) == datetime(2026, 12, 6, 22, tzinfo=UTC)


def test_defaults_can_set_a_schedule_that_a_rule_overrides(tree: Path):
    """defaults: active_hours/tz are inherited; a rule's own tz applies to the inherited hours."""
    text = HEAD.replace("state_dir", 'defaults:\n  active_hours: "Sat,Sun"\nstate_dir') + (
        RULE_A + "    tz: America/New_York\n" + RULE_B
    )
    a, b = load(tree, text).rules
    assert a.active_hours is not None and b.active_hours is not None
    assert (a.active_hours.tz, b.active_hours.tz) == ("America/New_York", None)
    assert a.active_hours.intervals == b.active_hours.intervals


@pytest.mark.parametrize(
    ("extra", "line", "key_path", "message", "severity"),
    [
        (
            '    active_hours: "Mon-Fri 7-19"\n',
            9,
            "rules[0].active_hours",
            "cannot read '7-19': expected days like Mon-Fri or Sat,Sun and times like 07:00-19:00",
            "error",
        ),
        (
            '    active_hours: "Mo-Fr 07:00-19:00"\n',
            9,
            "rules[0].active_hours",
            "unknown day 'Mo'; use Mon, Tue, Wed, Thu, Fri, Sat, Sun (or full names) or daily"
            " (got 'Mo-Fr 07:00-19:00')",
            "error",
        ),
        (
            '    active_hours: "Mon"\n    tz: Europe/Pariss\n',
            10,
            "rules[0].tz",
            "unknown time zone 'Europe/Pariss'; did you mean 'Europe/Paris'?",
            "error",
        ),
        (
            '    active_hours: "Mon"\n    tz: Nowhere/Atall\n',
            10,
            "rules[0].tz",
            "unknown time zone 'Nowhere/Atall' (an IANA name like Europe/Paris; a host without"
            " tzdata knows none: install the tzdata package)",
            "error",
        ),
        (
            "    tz: Europe/Paris\n",
            9,
            "rules[0].tz",
            "tz has no effect without active_hours (always open)",
            "warning",
        ),
        ("    priority: high\n", 9, "rules[0].priority", "expected an integer", "error"),
        (
            "    priority: 5000\n",
            9,
            "rules[0].priority",
            "must be between -1000 and 1000 (got 5000)",
            "error",
        ),
    ],
)
def test_a_schedule_mistake_names_file_line_and_key(
    tree: Path, extra: str, line: int, key_path: str, message: str, severity: str
):
    """Each bad active_hours, tz or priority is an issue at its own line, with the reason."""
    issues = [i for i in issues_of(tree, HEAD + RULE_A + extra) if i.key_path == key_path]
    assert len(issues) == 1, issues
    (issue,) = issues
    assert issue.file == str(tree / "config.yaml")
    assert (issue.line, issue.severity) == (line, severity)
    assert message in issue.message, issue.message
    assert f"config.yaml:{line}:" in str(issue)


def test_a_rule_built_in_code_takes_the_text_and_binds_its_zone():
    """Rule(active_hours="...", tz=...) parses the text and gives the schedule the rule's zone."""
    rule = Rule(
        name="r", watch=Path("/w"), deployment_id="d", active_hours="Mon 09:00-10:00", tz="UTC"
    )
    assert rule.active_hours == parse_schedule("Mon 09:00-10:00", tz="UTC")
    assert is_open(rule.active_hours, datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
