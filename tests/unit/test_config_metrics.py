"""`metrics.listen`: off unless set, host:port checked with a clear FILE:LINE:COL error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.config_helpers import HEAD, RULE_A, issues_of, load
from watcher.config.listen import parse_listen


def test_metrics_are_off_without_the_key(tree: Path) -> None:
    """No `metrics:` (or an empty one): no listener."""
    assert load(tree, HEAD + RULE_A).metrics.address() is None
    assert load(tree, HEAD + "metrics:\n" + RULE_A).metrics.address() is None
    assert load(tree, HEAD + "metrics: {listen: ''}\n" + RULE_A).metrics.listen is None


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9464", ("::1", 9464)),
    ],
)
def test_listen_is_parsed(tree: Path, listen: str, address: tuple[str, int]) -> None:
    """host:port, IPv6 in brackets, port 0 for any free port."""
    config = load(tree, HEAD + f'metrics:\n  listen: "{listen}"\n' + RULE_A)
    assert config.metrics.address() == address
    assert not config.warnings


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ('"9464"', "is not a listen address: expected host:port"),
        ('"127.0.0.1:99999"', "the port must be a number from 0 to 65535 (got '99999')"),
        ('"127.0.0.1:http"', "the port must be a number from 0 to 65535 (got 'http')"),
        ('"::1:9464"', "write an IPv6 address in brackets"),
        ('"[nope]:9464"', "'nope' in brackets is not an IPv6 address"),
        ('"bad host:1"', "'bad host' is not a host name or IP address"),
        ("9464", "expected a string, got an integer"),
    ],
)
def test_a_bad_listen_value_is_an_error_at_its_line(tree: Path, listen: str, message: str) -> None:
    """Each bad value is one error naming the file, line 5, column 3 and metrics.listen."""
    issues = issues_of(tree, HEAD + f"metrics:\n  listen: {listen}\n" + RULE_A)
    assert len(issues) == 1, issues
    issue = issues[0]
    where = (issue.severity, issue.line, issue.col, issue.key_path)
    assert where == ("error", 5, 3, "metrics.listen")
    assert message in issue.message
    assert str(issue).startswith(f"{tree / 'config.yaml'}:5:3: metrics.listen: ")


def test_an_unknown_metrics_key_is_an_error(tree: Path) -> None:
    """A typo under metrics: is named, with the key it probably meant."""
    issues = issues_of(tree, HEAD + "metrics:\n  listne: 127.0.0.1:1\n" + RULE_A)
    assert [(i.key_path, i.severity) for i in issues] == [("metrics.listne", "error")]
    assert "did you mean 'listen'" in issues[0].message


def test_listening_beyond_loopback_warns(tree: Path) -> None:
    """0.0.0.0 is allowed, with a warning that the endpoints have no authentication."""
    config = load(tree, HEAD + 'metrics:\n  listen: "0.0.0.0:9464"\n' + RULE_A)
    assert config.metrics.address() == ("0.0.0.0", 9464)
    assert [(i.key_path, i.severity) for i in config.warnings] == [("metrics.listen", "warning")]
    assert "without authentication" in config.warnings[0].message


def test_parse_listen_rejects_a_missing_host() -> None:
    """':9464' needs an explicit host (0.0.0.0 to listen everywhere)."""
    with pytest.raises(ValueError, match="expected host:port"):
        parse_listen(":9464")
