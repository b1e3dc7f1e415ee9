"""Config parsing: values derived once (env expansion, defaults, merges, paths, state_dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.config_helpers import HEAD, RULE_A, RULE_B, issues_of, load
from watcher.config import DEFAULT_STATE_DIR, load_config, parse_config
from watcher.errors import ConfigError


def test_env_expansion_in_config_values(tree: Path) -> None:
    """Strings expand everywhere; a plain `${N:-4}` is a number, a quoted one stays a string."""
    text = (
        "hub:\n  base_url: ${HUB:-https://h/api}\n  max_concurrency: ${CONC:-4}\n"
        "  context: ${CTX:-}\n"
        "rules:\n  - name: a\n    watch: ${ROOT}/a\n    remote_dir: org/${WS}\n"
        "    deployment_id: dep\n    settle_seconds: ${SETTLE}\n"
        "    settings:\n      keys:\n        custom: {region: '${REGION:-emea}', n: $$5}\n"
    )
    env = {"ROOT": str(tree), "WS": "finance", "SETTLE": "0.5", "CONC": "8"}
    config = load(tree, text, env=env)
    assert config.hub.base_url == "https://h/api"
    assert config.hub.max_concurrency == 8
    assert config.hub.context is None
    rule = config.rules[0]
    assert rule.watch == tree / "a"
    assert rule.remote_dir == "org/finance"
    assert rule.settle_seconds == 0.5
    assert rule.settings["keys"]["custom"] == {"region": "emea", "n": "$5"}

    quoted = text.replace("${CONC:-4}", '"${CONC:-4}"')
    issues = issues_of(tree, quoted, env=env)
    assert [(i.line, i.key_path) for i in issues] == [(3, "hub.max_concurrency")]
    assert "expected an integer, got a string ('8')" in issues[0].message


def test_token_file_relative_to_config(tree: Path) -> None:
    """A relative token_file (and ca_bundle) is resolved against the config file's folder."""
    text = "hub:\n  base_url: https://h/api\n  token_file: tok\n  ca_bundle: ca.pem\n" + RULE_A
    hub = load(tree, text).hub
    assert hub.token_file == tree / "tok"
    assert hub.ca_bundle == tree / "ca.pem"
    unset = text.replace("tok\n", "${TOKEN_FILE:-}\n")
    assert load(tree, unset).hub.token_file is None


def test_defaults_are_inherited_and_overridden(tree: Path) -> None:
    """Rules inherit defaults; a rule's own value wins; a rule's settings replace the defaults'."""
    text = (
        HEAD
        + "defaults:\n  settle_seconds: 2\n  observer: polling\n"
        + "  settings: {tags: [shared], runtime_config: {generate_post_process_pdf: true}}\n"
        + RULE_A
        + "    settings: {tags: [own]}\n"
        + RULE_B
        + "    settle_seconds: 9\n"
    )
    config = load(tree, text)
    a, b = config.rules
    assert (a.settle_seconds, a.observer, dict(a.settings)) == (2.0, "polling", {"tags": ["own"]})
    assert (b.settle_seconds, b.observer) == (9.0, "polling")
    assert b.settings["tags"] == ["shared"]


def test_yaml_merge_keys_work(tree: Path) -> None:
    """YAML anchors and `<<` merges are honoured; explicit keys win over merged ones."""
    text = (
        HEAD
        + "rules:\n  - &base\n    name: a\n    watch: @TMP/a\n    remote_dir: o/a\n"
        + "    deployment_id: dep\n    settle_seconds: 3\n"
        + "  - <<: *base\n    name: b\n    watch: @TMP/b\n"
    )
    b = load(tree, text).rules[1]
    assert (b.name, b.remote_dir, b.settle_seconds, b.watch) == ("b", "o/a", 3.0, tree / "b")


def test_remote_dir_trailing_slash_is_stripped(tree: Path) -> None:
    """A trailing '/' on remote_dir and base_url is dropped."""
    text = HEAD.replace("/api", "/api/") + RULE_A.replace("drive/a", "drive/a//")
    config = load(tree, text)
    assert config.rules[0].remote_dir == "org/ws/fs/drive/a"
    assert config.hub.base_url == "https://aihub.example.com/api"


def test_state_dir_sources(tree: Path) -> None:
    """state_dir: relative to the config file; else $STATE_DIRECTORY (first entry); else default."""
    relative = load(tree, "hub:\n  base_url: https://h/api\nstate_dir: st\n" + RULE_A)
    assert relative.state_dir == tree / "st"
    no_key = "hub:\n  base_url: https://h/api\n" + RULE_A
    from_env = load(tree, no_key, env={"STATE_DIRECTORY": "/var/lib/x:/var/lib/y"})
    assert from_env.state_dir == Path("/var/lib/x")
    assert load(tree, no_key).state_dir == Path(DEFAULT_STATE_DIR)


def test_state_directory_env_inside_watch_is_an_error(tree: Path) -> None:
    """With state_dir unset, $STATE_DIRECTORY inside a watched folder is reported at the watch."""
    text = "hub:\n  base_url: https://h/api\n" + RULE_A
    issues = issues_of(tree, text, env={"STATE_DIRECTORY": str(tree / "a" / "state")})
    assert [(i.line, i.key_path) for i in issues] == [(5, "rules[0].watch")]
    assert "contains the state directory" in issues[0].message


def test_http_to_loopback_does_not_warn(tree: Path) -> None:
    """Plain http to 127.0.0.1 (the simulator) is not a warning."""
    text = "hub:\n  base_url: http://127.0.0.1:8080/api\nstate_dir: @TMP/state\n" + RULE_A
    assert load(tree, text).warnings == ()


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing config file is one ConfigError issue at 1:1, not an OSError."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml", env={})
    (issue,) = info.value.issues
    assert (issue.line, issue.col, issue.key_path) == (1, 1, "(file)")
    assert "cannot read" in issue.message


def test_parse_config_names_the_given_path(tree: Path) -> None:
    """parse_config uses `path` for issues and for resolving relative paths."""
    text = ("hub:\n  base_url: https://h/api\nstate_dir: st\n" + RULE_A).replace("@TMP", str(tree))
    config = parse_config(text, path=tree / "sub" / "c.yaml", env={})
    assert config.state_dir == tree / "sub" / "st"
    assert config.path == tree / "sub" / "c.yaml"
