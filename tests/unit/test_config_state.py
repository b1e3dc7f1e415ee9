"""`state:`: the ledger's storage, sqlite by default or a PostgreSQL DSN that never shows."""

from __future__ import annotations

from pathlib import Path

from tests.unit.config_helpers import HEAD, RULE_A, issues_of, load

PASSWORD = "pw-in-the-dsn-77"


def test_sqlite_is_the_default(tree: Path) -> None:
    config = load(tree, HEAD + RULE_A)
    assert (config.state.backend, config.state.dsn) == ("sqlite", None)


def test_postgresql_with_a_dsn_from_the_environment(tree: Path) -> None:
    dsn = f"postgresql://watcher:{PASSWORD}@db.example.com:5432/aihub"
    text = HEAD + "state:\n  backend: postgresql\n  dsn: ${AIHUB_WATCHER_DSN}\n" + RULE_A
    config = load(tree, text, env={"AIHUB_WATCHER_DSN": dsn})
    assert (config.state.backend, config.state.dsn) == ("postgresql", dsn)
    # The config's repr (logs, tracebacks) masks the password.
    assert PASSWORD not in repr(config) and "watcher:***@db.example.com" in repr(config)


def test_postgresql_needs_a_dsn(tree: Path) -> None:
    issues = issues_of(tree, HEAD + "state:\n  backend: postgresql\n" + RULE_A)
    assert [(i.line, i.key_path, i.severity) for i in issues] == [(4, "state.dsn", "error")]
    assert "backend: postgresql needs state.dsn" in issues[0].message


def test_a_dsn_that_is_not_a_uri_is_refused_without_echoing_it(tree: Path) -> None:
    text = HEAD + f"state:\n  backend: postgresql\n  dsn: host=db password={PASSWORD}\n" + RULE_A
    issues = issues_of(tree, text)
    assert [(i.line, i.key_path) for i in issues] == [(6, "state.dsn")]
    assert "must be a connection URI starting with postgresql://" in issues[0].message
    assert PASSWORD not in str(issues[0])


def test_a_dsn_without_postgresql_is_a_warning(tree: Path) -> None:
    text = HEAD + "state:\n  dsn: postgresql://db/aihub\n" + RULE_A
    issues = issues_of(tree, text)
    assert [(i.key_path, i.severity) for i in issues] == [("state.dsn", "warning")]


def test_an_unknown_state_key_and_backend(tree: Path) -> None:
    text = HEAD + "state:\n  backend: mysql\n  lease: 3\n" + RULE_A
    issues = issues_of(tree, text)
    assert [i.key_path for i in issues] == ["state.backend", "state.lease"]
