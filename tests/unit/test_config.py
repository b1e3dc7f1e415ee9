"""config.py: each validation error at its FILE:LINE:COL, tokens, env expansion, schema, example."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from watcher.config import (
    DEFAULT_STATE_DIR,
    HUB_KEYS,
    RULE_KEYS,
    SETTINGS_KEYS,
    SETTINGS_KEYS_KEYS,
    TOP_KEYS,
    Config,
    HubConfig,
    Rule,
    diff_configs,
    expand_env,
    json_schema,
    load_config,
    parse_config,
    summary_table,
)
from watcher.errors import ConfigError, ConfigIssue, TokenError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"

# Lines 1-3 and 4-8 of most rows below; an extra rule key appended after RULE_A is on line 9, col 5.
HEAD = "hub:\n  base_url: https://aihub.example.com/api\nstate_dir: @TMP/state\n"
RULE_A = (
    "rules:\n"
    "  - name: a\n"
    "    watch: @TMP/a\n"
    "    remote_dir: org/ws/fs/drive/a\n"
    "    deployment_id: dep-1\n"
)
RULE_B = (
    "  - name: b\n"  # line 9 when appended to HEAD + RULE_A
    "    watch: @TMP/b\n"
    "    remote_dir: org/ws/fs/drive/b\n"
    "    deployment_id: dep-2\n"
)
SECRET = "s3cr3t-t0ken-VALUE"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Real folders the rules can watch: a, a/sub, b, and a plain file."""
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "ca.pem").write_text("pem")
    return tmp_path


def write(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text.replace("@TMP", str(tmp)), encoding="utf-8")
    return path


def issues_of(tmp: Path, text: str, env: dict[str, str] | None = None) -> tuple[ConfigIssue, ...]:
    """All issues (errors raise ConfigError; a valid config's warnings are returned)."""
    try:
        return load_config(write(tmp, text), env=env or {}).warnings
    except ConfigError as exc:
        return exc.issues


def load(tmp: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp, text), env=env or {})


# (id, yaml, line, col, key_path, message fragment, severity)
ROWS: list[tuple[str, str, int, int, str, str, str]] = [
    (
        "yaml_syntax",
        "hub:\n  base_url: a: b\n",
        2,
        14,
        "yaml",
        "YAML syntax error: mapping values are not allowed here",
        "error",
    ),
    (
        "yaml_syntax_unclosed_flow",
        HEAD + "rules: [\n  {name: a\n",
        6,
        1,
        "yaml",
        "YAML syntax error",
        "error",
    ),
    (
        "yaml_control_character",
        'hub:\n  base_url: "https://h/api\x07"\n',
        2,
        27,
        "yaml",
        "unacceptable character #x0007",
        "error",
    ),
    (
        "yaml_two_documents",
        "a: 1\n---\nb: 2\n",
        2,
        1,
        "yaml",
        "but found another document",
        "error",
    ),
    ("empty_file", "", 1, 1, "(root)", "the file is empty", "error"),
    (
        "non_string_key",
        HEAD + "? [a, b]\n: 1\n" + RULE_A,
        4,
        3,
        "(root)",
        "keys must be plain strings",
        "error",
    ),
    (
        "unknown_yaml_tag",
        HEAD + RULE_A + "    version: !semver 1.2\n",
        9,
        14,
        "rules[0].version",
        "could not determine a constructor for the tag '!semver'",
        "error",
    ),
    (
        "settings_not_json",
        HEAD + RULE_A + "    settings:\n      runtime_config: {when: 2024-01-01}\n",
        10,
        7,
        "rules[0].settings.runtime_config",
        "holds a date, which JSON cannot carry (quote it)",
        "error",
    ),
    (
        "base_url_with_credentials",
        "hub:\n  base_url: https://user:pw@h/api\n" + RULE_A,
        2,
        3,
        "hub.base_url",
        "must not contain user credentials",
        "error",
    ),
    ("top_not_mapping", "- a\n- b\n", 1, 1, "(root)", "the top level must be a mapping", "error"),
    (
        "duplicate_key",
        HEAD + RULE_A + "    watch: @TMP/b\n",
        9,
        5,
        "rules[0].watch",
        "duplicate key 'watch' (first defined on line 6)",
        "error",
    ),
    (
        "duplicate_top_key",
        HEAD + "state_dir: /x\n" + RULE_A,
        4,
        1,
        "state_dir",
        "duplicate key 'state_dir' (first defined on line 3)",
        "error",
    ),
    (
        "unknown_rule_key_suggests",
        HEAD + RULE_A + "    settle_second: 3\n",
        9,
        5,
        "rules[0].settle_second",
        "unknown key 'settle_second'; did you mean 'settle_seconds'?",
        "error",
    ),
    (
        "unknown_hub_key_suggests",
        "hub:\n  base_url: https://h/api\n  max_concurency: 4\n" + RULE_A,
        3,
        3,
        "hub.max_concurency",
        "did you mean 'max_concurrency'?",
        "error",
    ),
    (
        "hub_key_at_top_level",
        HEAD + "max_concurrency: 4\n" + RULE_A,
        4,
        1,
        "max_concurrency",
        "unknown key 'max_concurrency': it belongs under hub:",
        "error",
    ),
    (
        "rule_key_under_hub",
        "hub:\n  base_url: https://h/api\n  settle_seconds: 4\n" + RULE_A,
        3,
        3,
        "hub.settle_seconds",
        "it is a rule setting",
        "error",
    ),
    (
        "type_string_for_number",
        HEAD + RULE_A + '    settle_seconds: "five"\n',
        9,
        5,
        "rules[0].settle_seconds",
        "expected a number, got a string ('five')",
        "error",
    ),
    (
        "type_bool_is_not_int",
        "hub:\n  base_url: https://h/api\n  max_concurrency: true\n" + RULE_A,
        3,
        3,
        "hub.max_concurrency",
        "expected an integer, got a boolean",
        "error",
    ),
    (
        "type_float_is_not_int",
        HEAD + RULE_A + "    max_files: 2.5\n",
        9,
        5,
        "rules[0].max_files",
        "expected an integer, got a number (2.5)",
        "error",
    ),
    (
        "type_int_for_string_says_quote",
        HEAD + RULE_A.replace("dep-1", "123"),
        8,
        5,
        "rules[0].deployment_id",
        'expected a string, got an integer (quote it: "123")',
        "error",
    ),
    (
        "type_list_for_string",
        HEAD + RULE_A + "    version: [1, 2]\n",
        9,
        5,
        "rules[0].version",
        "expected a string, got a list",
        "error",
    ),
    (
        "type_rule_not_mapping",
        HEAD + "rules:\n  - just-a-name\n",
        5,
        5,
        "rules[0]",
        "each rule must be a mapping",
        "error",
    ),
    (
        "type_null_for_required",
        HEAD + "rules:\n  - name:\n    watch: @TMP/a\n    remote_dir: o/a\n    deployment_id: d\n",
        5,
        5,
        "rules[0].name",
        "expected a string, got nothing",
        "error",
    ),
    (
        "missing_hub",
        "state_dir: /x\n" + RULE_A,
        1,
        1,
        "hub",
        "missing required key 'hub'",
        "error",
    ),
    (
        "missing_base_url",
        "hub:\n  context: acme\n" + RULE_A,
        2,
        3,
        "hub.base_url",
        "missing required key 'base_url'",
        "error",
    ),
    (
        "missing_rule_name",
        HEAD + "rules:\n  - watch: @TMP/a\n    remote_dir: o/a\n    deployment_id: d\n",
        5,
        5,
        "rules[0].name",
        "missing required key 'name'",
        "error",
    ),
    (
        "missing_rule_watch",
        HEAD + RULE_A + "  - name: b\n    remote_dir: o/b\n    deployment_id: d\n",
        9,
        5,
        "rules[1].watch",
        "missing required key 'watch'",
        "error",
    ),
    (
        "missing_rule_remote_dir",
        HEAD + "rules:\n  - name: a\n    watch: @TMP/a\n    deployment_id: d\n",
        5,
        5,
        "rules[0].remote_dir",
        "missing required key 'remote_dir'",
        "error",
    ),
    (
        "missing_rule_deployment_id",
        HEAD + "rules:\n  - name: a\n    watch: @TMP/a\n    remote_dir: o/a\n",
        5,
        5,
        "rules[0].deployment_id",
        "missing required key 'deployment_id'",
        "error",
    ),
    ("missing_rules", HEAD, 1, 1, "rules", "missing required key 'rules'", "error"),
    ("empty_rules_list", HEAD + "rules: []\n", 4, 1, "rules", "the rules list is empty", "error"),
    ("null_rules_list", HEAD + "rules:\n", 4, 1, "rules", "the rules list is empty", "error"),
    (
        "rules_not_a_list",
        HEAD + "rules:\n  name: a\n",
        4,
        1,
        "rules",
        "expected a list of rules",
        "error",
    ),
    (
        "duplicate_rule_name",
        HEAD + RULE_A + RULE_B.replace("name: b", "name: a"),
        9,
        5,
        "rules[1].name",
        "duplicate rule name 'a' (first used by rules[0] on line 5)",
        "error",
    ),
    (
        "bad_rule_name",
        HEAD + RULE_A.replace("name: a", "name: my rule"),
        5,
        5,
        "rules[0].name",
        "rule names use letters, digits",
        "error",
    ),
    (
        "watch_relative",
        HEAD + RULE_A.replace("@TMP/a", "drops/a"),
        6,
        5,
        "rules[0].watch",
        "must be an absolute path (got 'drops/a')",
        "error",
    ),
    (
        "watch_missing_is_warning",
        HEAD + RULE_A.replace("@TMP/a", "@TMP/nope"),
        6,
        5,
        "rules[0].watch",
        "does not exist yet; the daemon waits for it",
        "warning",
    ),
    (
        "watch_is_a_file",
        HEAD + RULE_A.replace("@TMP/a", "@TMP/file.txt"),
        6,
        5,
        "rules[0].watch",
        "is not a directory",
        "error",
    ),
    (
        "watch_coincides",
        HEAD + RULE_A + RULE_B.replace("@TMP/b", "@TMP/a/"),
        10,
        5,
        "rules[1].watch",
        "is the same folder as rules[0].watch",
        "error",
    ),
    (
        "watch_nested_inside",
        HEAD + RULE_A + RULE_B.replace("@TMP/b", "@TMP/a/sub"),
        10,
        5,
        "rules[1].watch",
        "is inside rules[0].watch",
        "error",
    ),
    (
        "watch_contains_other",
        HEAD + RULE_A.replace("@TMP/a", "@TMP/a/sub") + RULE_B.replace("@TMP/b", "@TMP/a"),
        10,
        5,
        "rules[1].watch",
        "contains rules[0].watch",
        "error",
    ),
    (
        "state_dir_inside_watch",
        HEAD.replace("@TMP/state", "@TMP/a/.state") + RULE_A,
        3,
        1,
        "state_dir",
        "is inside the watched folder rules[0].watch",
        "error",
    ),
    (
        "remote_dir_dotdot",
        HEAD + RULE_A.replace("org/ws/fs/drive/a", "org/ws/../other"),
        7,
        5,
        "rules[0].remote_dir",
        "must not contain '..' segments",
        "error",
    ),
    (
        "remote_dir_empty",
        HEAD + RULE_A.replace("org/ws/fs/drive/a", '"/"'),
        7,
        5,
        "rules[0].remote_dir",
        "must not be empty",
        "error",
    ),
    (
        "remote_dir_absolute",
        HEAD + RULE_A.replace("org/ws/fs/drive/a", "/org/ws"),
        7,
        5,
        "rules[0].remote_dir",
        "AI Hub paths start with the organization or user, not '/'",
        "error",
    ),
    (
        "remote_dir_double_slash",
        HEAD + RULE_A.replace("org/ws/fs/drive/a", "org//ws"),
        7,
        5,
        "rules[0].remote_dir",
        "must not contain empty segments",
        "error",
    ),
    (
        "settle_zero",
        HEAD + RULE_A + "    settle_seconds: 0\n",
        9,
        5,
        "rules[0].settle_seconds",
        "must be between 0.05 and 86400 seconds (got 0)",
        "error",
    ),
    (
        "settle_too_big",
        HEAD + RULE_A + "    settle_seconds: 90000\n",
        9,
        5,
        "rules[0].settle_seconds",
        "must be between 0.05 and 86400 seconds (got 90000)",
        "error",
    ),
    (
        "concurrency_zero",
        "hub:\n  base_url: https://h/api\n  max_concurrency: 0\n" + RULE_A,
        3,
        3,
        "hub.max_concurrency",
        "must be between 1 and 64 (got 0)",
        "error",
    ),
    (
        "concurrency_too_big",
        "hub:\n  base_url: https://h/api\n  max_concurrency: 65\n" + RULE_A,
        3,
        3,
        "hub.max_concurrency",
        "must be between 1 and 64 (got 65)",
        "error",
    ),
    (
        "max_rps_zero",
        "hub:\n  base_url: https://h/api\n  max_rps: 0\n" + RULE_A,
        3,
        3,
        "hub.max_rps",
        "must be greater than 0 (got 0)",
        "error",
    ),
    (
        "tags_over_budget",
        HEAD + RULE_A + "    settings:\n      tags: [" + ", ".join(["abcdefghij"] * 47) + "]\n",
        10,
        7,
        "rules[0].settings.tags",
        "tags total 470 characters; the API allows 500 in all and the daemon adds one tag of its"
        " own (up to 40), so a rule's tags may total at most 460",
        "error",
    ),
    (
        "tags_not_strings",
        HEAD + RULE_A + "    settings:\n      tags: {a: 1}\n",
        10,
        7,
        "rules[0].settings.tags",
        "expected a list of strings",
        "error",
    ),
    (
        "settings_unknown_key",
        HEAD + RULE_A + "    settings:\n      tag: [x]\n",
        10,
        7,
        "rules[0].settings.tag",
        "unknown settings key 'tag'; did you mean 'tags'?",
        "error",
    ),
    (
        "settings_keys_unknown",
        HEAD + RULE_A + "    settings:\n      keys:\n        secrets: {}\n",
        11,
        9,
        "rules[0].settings.keys.secrets",
        "did you mean 'secret'?",
        "error",
    ),
    (
        "settings_not_mapping",
        HEAD + RULE_A + "    settings: [a]\n",
        9,
        5,
        "rules[0].settings",
        "expected a mapping",
        "error",
    ),
    (
        "drop_mode",
        HEAD + RULE_A + "    drop: folders\n",
        9,
        5,
        "rules[0].drop",
        "must be one of: folder, files (got 'folders'); did you mean 'folder'?",
        "error",
    ),
    (
        "observer_kind",
        HEAD + RULE_A + "    observer: fanotify\n",
        9,
        5,
        "rules[0].observer",
        "must be one of: inotify, polling (got 'fanotify')",
        "error",
    ),
    (
        "on_change_kind",
        HEAD + RULE_A + "    on_change: no\n",
        9,
        5,
        "rules[0].on_change",
        "must be one of: ignore, resubmit (got a boolean)",
        "error",
    ),
    (
        "on_complete_unknown",
        HEAD + RULE_A + "    on_complete: archive\n",
        9,
        5,
        "rules[0].on_complete",
        "must be keep | delete | move:<absolute dir> (got 'archive')",
        "error",
    ),
    (
        "on_complete_move_relative",
        HEAD + RULE_A + "    on_complete: move:done\n",
        9,
        5,
        "rules[0].on_complete",
        "move:<dir> needs an absolute directory (got 'move:done')",
        "error",
    ),
    (
        "on_failure_delete_refused",
        HEAD + RULE_A + "    on_failure: delete\n",
        9,
        5,
        "rules[0].on_failure",
        "must be keep | move:<absolute dir> (got 'delete')",
        "error",
    ),
    (
        "move_target_inside_watch",
        HEAD + RULE_A + "    on_complete: move:@TMP/a/done\n",
        9,
        5,
        "rules[0].on_complete",
        "move target is inside rules[0].watch",
        "error",
    ),
    (
        "ready_marker_slash",
        HEAD + RULE_A + "    ready_marker: done/.ready\n",
        9,
        5,
        "rules[0].ready_marker",
        "must be a non-empty file name suffix without '/'",
        "error",
    ),
    (
        "ready_marker_empty",
        HEAD + RULE_A + '    ready_marker: ""\n',
        9,
        5,
        "rules[0].ready_marker",
        "must be a non-empty file name suffix",
        "error",
    ),
    (
        "ignore_unclosed_bracket",
        HEAD + RULE_A + '    ignore: ["*.tmp", "[abc"]\n',
        9,
        23,
        "rules[0].ignore[1]",
        "pattern '[abc' has an unclosed '['",
        "error",
    ),
    (
        "ignore_with_slash",
        HEAD + RULE_A + "    ignore:\n      - tmp/*.part\n",
        10,
        9,
        "rules[0].ignore[0]",
        "patterns match file names, not paths",
        "error",
    ),
    (
        "ignore_empty_pattern",
        HEAD + RULE_A + '    ignore: [""]\n',
        9,
        14,
        "rules[0].ignore[0]",
        "empty pattern",
        "error",
    ),
    (
        "ignore_not_list",
        HEAD + RULE_A + "    ignore: '*.tmp'\n",
        9,
        5,
        "rules[0].ignore",
        "expected a list of glob patterns",
        "error",
    ),
    (
        "base_url_scheme",
        "hub:\n  base_url: ftp://h/api\n" + RULE_A,
        2,
        3,
        "hub.base_url",
        "must start with https://",
        "error",
    ),
    (
        "base_url_query",
        "hub:\n  base_url: https://h/api?org=1\n" + RULE_A,
        2,
        3,
        "hub.base_url",
        "must not have a query string or fragment",
        "error",
    ),
    (
        "base_url_http_remote_warns",
        "hub:\n  base_url: http://aihub.example.com/api\n" + RULE_A,
        2,
        3,
        "hub.base_url",
        "plain http to aihub.example.com sends the API token unencrypted; use https",
        "warning",
    ),
    (
        "token_in_hub",
        f"hub:\n  base_url: https://h/api\n  token: {SECRET}\n" + RULE_A,
        3,
        3,
        "hub.token",
        "a literal API token does not belong in the config file; put it in the environment"
        " variable named by hub.token_env",
        "error",
    ),
    (
        "api_key_at_top",
        HEAD + f"api_key: {SECRET}\n" + RULE_A,
        4,
        1,
        "api_key",
        "systemd credential 'aihub-token'",
        "error",
    ),
    (
        "authorization_in_rule",
        HEAD + RULE_A + f"    Authorization: Bearer {SECRET}\n",
        9,
        5,
        "rules[0].Authorization",
        "a literal API token does not belong in the config file",
        "error",
    ),
    (
        "token_env_holds_a_token",
        f"hub:\n  base_url: https://h/api\n  token_env: {SECRET}\n" + RULE_A,
        3,
        3,
        "hub.token_env",
        "must be the name of an environment variable (like AIHUB_TOKEN), not the token itself",
        "error",
    ),
    (
        "env_var_unset",
        HEAD + RULE_A + "    output_dir: out/${OUT_ROOT}/x\n",
        9,
        17,
        "rules[0].output_dir",
        "environment variable OUT_ROOT is not set (write ${OUT_ROOT:-default} for a default)",
        "error",
    ),
    (
        "env_var_bad_syntax",
        HEAD + RULE_A + '    version: "${1X}"\n',
        9,
        14,
        "rules[0].version",
        "bad variable reference '${1X}'",
        "error",
    ),
    (
        "template_unknown_placeholder",
        HEAD + RULE_A + '    output_dir: "out/{rulee}/{drop}"\n',
        9,
        5,
        "rules[0].output_dir",
        "unknown placeholder '{rulee}'; use {rule}, {drop}, {date}",
        "error",
    ),
    (
        "template_seq_outside_batch_name",
        HEAD + RULE_A + '    output_dir: "out/{seq}"\n',
        9,
        5,
        "rules[0].output_dir",
        "'{seq}' is only available in batch_name",
        "error",
    ),
    (
        "template_single_brace",
        HEAD + RULE_A + '    output_dir: "out/{rule"\n',
        9,
        5,
        "rules[0].output_dir",
        "bad template: expected '}' before end of string",
        "error",
    ),
    (
        "template_bad_format",
        HEAD + RULE_A + '    batch_name: "{seq:q}"\n',
        9,
        5,
        "rules[0].batch_name",
        "bad format in '{seq:q}'",
        "error",
    ),
    (
        "template_conversion",
        HEAD + RULE_A + '    output_dir: "out/{rule!r}"\n',
        9,
        5,
        "rules[0].output_dir",
        "conversions like '!r' are not supported",
        "error",
    ),
    (
        "output_dir_dotdot",
        HEAD + RULE_A + '    output_dir: "out/../{rule}"\n',
        9,
        5,
        "rules[0].output_dir",
        "output_dir must not contain '..' segments",
        "error",
    ),
    (
        "batch_name_with_slash",
        HEAD + RULE_A + '    batch_name: "{date:%Y/%m}-{seq}"\n',
        9,
        5,
        "rules[0].batch_name",
        "must render to a single folder name, without '/'",
        "error",
    ),
    (
        "deployment_id_with_slash",
        HEAD + RULE_A.replace("dep-1", "dep/1"),
        8,
        5,
        "rules[0].deployment_id",
        "is not a valid deployment ID",
        "error",
    ),
    (
        "defaults_cannot_set_name",
        HEAD + "defaults:\n  name: x\n" + RULE_A,
        5,
        3,
        "defaults.name",
        "defaults cannot set 'name'",
        "error",
    ),
    (
        "defaults_type_error_at_defaults",
        HEAD + "defaults:\n  settle_seconds: soon\n" + RULE_A,
        5,
        3,
        "defaults.settle_seconds",
        "expected a number, got a string ('soon')",
        "error",
    ),
    (
        "log_level_choice",
        HEAD + "log_level: verbose\n" + RULE_A,
        4,
        1,
        "log_level",
        "must be one of: debug, info, warning, error (got 'verbose')",
        "error",
    ),
    (
        "ca_bundle_missing",
        "hub:\n  base_url: https://h/api\n  ca_bundle: /nonexistent/ca.pem\n" + RULE_A,
        3,
        3,
        "hub.ca_bundle",
        "/nonexistent/ca.pem does not exist or is not a file",
        "error",
    ),
    (
        "shutdown_timeout_zero",
        HEAD + "shutdown_timeout_seconds: 0\n" + RULE_A,
        4,
        1,
        "shutdown_timeout_seconds",
        "must be greater than 0 and at most 3600 seconds (got 0)",
        "error",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "col", "key_path", "fragment", "severity"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_each_mistake_is_reported_at_its_key(
    tree: Path, text: str, line: int, col: int, key_path: str, fragment: str, severity: str
) -> None:
    """Each mistake yields an issue with the message, the key path and the key's line and column."""
    issues = issues_of(tree, text)
    matching = [i for i in issues if i.key_path == key_path and fragment in i.message]
    assert matching, "\n".join(map(str, issues))
    issue = matching[0]
    assert (issue.line, issue.col, issue.severity) == (line, col, severity), str(issue)
    assert issue.file == str(tree / "config.yaml")
    if severity == "error":
        with pytest.raises(ConfigError):
            load(tree, text)


def test_issue_renders_as_file_line_col_path_message(tree: Path) -> None:
    """str(issue) is `FILE:LINE:COL: key.path: message`, warnings marked as such."""
    path = tree / "config.yaml"
    error = issues_of(tree, HEAD + RULE_A + "    settle_seconds: 0\n")[0]
    assert str(error) == (
        f"{path}:9:5: rules[0].settle_seconds: must be between 0.05 and 86400 seconds (got 0)"
    )
    warning = issues_of(tree, HEAD + RULE_A.replace("@TMP/a", "@TMP/gone"))[0]
    assert str(warning) == (
        f"{path}:6:5: rules[0].watch: warning: {tree}/gone does not exist yet;"
        " the daemon waits for it"
    )


def test_literal_token_value_is_never_echoed(tree: Path) -> None:
    """A refused literal token appears in no issue and not in the ConfigError text."""
    text = (
        f"hub:\n  base_url: https://h/api\n  token: {SECRET}\n  token_env: {SECRET}\n"
        + RULE_A
        + f"    api_token: {SECRET}\n"
    )
    with pytest.raises(ConfigError) as info:
        load(tree, text)
    assert len(info.value.issues) == 3
    assert SECRET not in str(info.value)
    assert all(SECRET not in str(i) for i in info.value.issues)


def test_token_key_names_of_the_deployment_are_allowed(tree: Path) -> None:
    """settings.keys.custom/secret may have a key named like `api_key`: it is the app's key name."""
    text = HEAD + RULE_A + "    settings:\n      keys:\n        secret: {api_key: vault-name}\n"
    config = load(tree, text)
    assert config.rules[0].settings["keys"]["secret"] == {"api_key": "vault-name"}


def test_many_mistakes_are_reported_together(tree: Path) -> None:
    """One file with a dozen different mistakes yields one ConfigError listing all, by line."""
    text = (
        "hub:\n"  # 1
        "  base_url: https://aihub.example.com/api?x=1\n"  # 2 query
        "  max_concurency: 4\n"  # 3 unknown key
        f"  token: {SECRET}\n"  # 4 literal token
        "  max_rps: 0\n"  # 5 range
        "state_dir: @TMP/a/state\n"  # 6 inside a watched folder
        "defaults:\n"  # 7
        "  settle_seconds: five\n"  # 8 type
        "rules:\n"  # 9
        "  - name: a\n"  # 10
        "    watch: @TMP/a\n"  # 11
        "    remote_dir: org/ws/../x\n"  # 12 '..'
        "    deployment_id: d1\n"  # 13
        "    drop: folders\n"  # 14 choice
        '    output_dir: "out/{rulee}"\n'  # 15 template
        "  - name: a\n"  # 16 duplicate name
        "    watch: @TMP/a/sub\n"  # 17 nested
        "    remote_dir: org/b\n"  # 18
        "    deployment_id: d2\n"  # 19
        "    settle_second: 3\n"  # 20 unknown key
        '    ignore: ["[abc"]\n'  # 21 glob
        "    settings:\n"  # 22
        '      tags: ["${TAG}"]\n'  # 23 unset env var
        "  - watch: rel/path\n"  # 24 missing name + deployment_id, relative watch
        "    remote_dir: org/c\n"  # 25
        "    observer: polling\n"  # 26
        "    observer: inotify\n"  # 27 duplicate key
        "    max_attempts: true\n"  # 28 bool is not int
    )
    with pytest.raises(ConfigError) as info:
        load(tree, text)
    got = [(i.line, i.key_path) for i in info.value.issues]
    assert got == [
        (2, "hub.base_url"),
        (3, "hub.max_concurency"),
        (4, "hub.token"),
        (5, "hub.max_rps"),
        (6, "state_dir"),
        (8, "defaults.settle_seconds"),
        (12, "rules[0].remote_dir"),
        (14, "rules[0].drop"),
        (15, "rules[0].output_dir"),
        (16, "rules[1].name"),
        (17, "rules[1].watch"),
        (20, "rules[1].settle_second"),
        (21, "rules[1].ignore[0]"),
        (23, "rules[1].settings.tags[0]"),
        (24, "rules[2].name"),
        (24, "rules[2].watch"),
        (24, "rules[2].deployment_id"),
        (27, "rules[2].observer"),
        (28, "rules[2].max_attempts"),
    ]
    assert all(i.severity == "error" for i in info.value.issues)
    assert f"{len(got)} error(s) in config" in str(info.value)
    assert SECRET not in str(info.value)


# --- the example config and the schema ----------------------------------------------------


def test_example_config_validates_with_only_missing_folder_warnings() -> None:
    """config.example.yaml loads; its only issues are 'watch does not exist yet' warnings."""
    config = load_config(EXAMPLE, env={})
    assert [r.name for r in config.rules] == ["invoices", "claims"]
    assert {r.drop for r in config.rules} == {"folder", "files"}
    missing = [f"rules[{i}].watch" for i, r in enumerate(config.rules) if not r.watch.exists()]
    assert [i.key_path for i in config.warnings] == missing
    for issue in config.warnings:
        assert issue.severity == "warning"
        assert "does not exist yet; the daemon waits for it" in issue.message


def test_example_config_documents_every_key() -> None:
    """Every key in the tables appears in the example, with the table's doc line as its comment."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for spec in (*TOP_KEYS, *HUB_KEYS, *RULE_KEYS):
        assert f"# {spec.doc}\n" in text, spec.name
        assert re.search(rf"^\s*(#\s*)?(- )?{spec.name}:", text, re.MULTILINE), spec.name
    for name, doc in (*SETTINGS_KEYS.items(), *SETTINGS_KEYS_KEYS.items()):
        assert f"# {doc}\n" in text, name
        assert re.search(rf"^\s+{name}:", text, re.MULTILINE), name


def test_dataclass_defaults_match_the_key_table() -> None:
    """Rule and HubConfig defaults equal the table's defaults (the table is the one truth)."""
    rule = Rule(name="r", watch=Path("/w"), remote_dir="o/w", deployment_id="d")
    for spec in RULE_KEYS:
        if not spec.required:
            expected = spec.default
            actual = getattr(rule, spec.name)
            if spec.name == "settings":
                actual = dict(actual)
            assert actual == expected, spec.name
    hub = HubConfig(base_url="https://h/api")
    for spec in HUB_KEYS:
        if not spec.required:
            assert getattr(hub, spec.name) == spec.default, spec.name


def test_schema_is_valid_and_accepts_the_example() -> None:
    """json_schema() is valid draft 2020-12 and accepts the example parsed as plain YAML."""
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(document)) == []


@pytest.mark.parametrize(
    ("where", "mutation"),
    [
        ("top", lambda d: d.update(colour="blue")),
        ("hub", lambda d: d["hub"].update(max_concurency=4)),
        ("rule", lambda d: d["rules"][0].update(settle_second=3)),
        ("settings", lambda d: d["rules"][0]["settings"].update(tag=["x"])),
        ("enum", lambda d: d["rules"][0].update(drop="folders")),
        ("range", lambda d: d["hub"].update(max_concurrency=65)),
        ("required", lambda d: d["rules"][0].pop("deployment_id")),
        ("empty_rules", lambda d: d.update(rules=[])),
        ("defaults_name", lambda d: d["defaults"].update(name="x")),
    ],
)
def test_schema_rejects_mistakes(where: str, mutation) -> None:
    """The schema rejects unknown keys (additionalProperties: false), bad enums and ranges."""
    validator = jsonschema.Draft202012Validator(json_schema())
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    mutation(document)
    assert list(validator.iter_errors(document)), where


def test_schema_lets_defaults_supply_required_rule_keys() -> None:
    """A rule may leave out deployment_id when defaults has it, as the validator allows."""
    validator = jsonschema.Draft202012Validator(json_schema())
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for rule in document["rules"]:
        rule.pop("deployment_id")
    assert list(validator.iter_errors(document))
    document["defaults"]["deployment_id"] = "dep"
    assert list(validator.iter_errors(document)) == []


def test_schema_allows_env_references_in_typed_fields() -> None:
    """A `${VAR:-4}` where a number goes passes the schema (it expands when loading)."""
    validator = jsonschema.Draft202012Validator(json_schema())
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    document["hub"]["max_concurrency"] = "${AIHUB_CONCURRENCY:-4}"
    assert list(validator.iter_errors(document)) == []


# --- tokens -------------------------------------------------------------------------------


def test_token_from_env_var(tmp_path: Path) -> None:
    """Without credential or file, the token comes from the env var named by token_env."""
    hub = HubConfig(base_url="https://h/api", token_env="MY_TOKEN")
    env = {"MY_TOKEN": f"  {SECRET}\n"}
    assert hub.read_token(env) == SECRET
    assert hub.token_source(env) == "env MY_TOKEN"


def test_token_from_file_wins_over_env(tmp_path: Path) -> None:
    """token_file, when set, is used instead of the env var."""
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    hub = HubConfig(base_url="https://h/api", token_file=token_file)
    env = {"AIHUB_TOKEN": "from-env"}
    assert hub.read_token(env) == SECRET
    assert hub.token_source(env) == f"file {token_file}"


def test_token_from_systemd_credential_wins(tmp_path: Path) -> None:
    """$CREDENTIALS_DIRECTORY/aihub-token wins over token_file and the env var."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "aihub-token").write_text(SECRET)
    (tmp_path / "token").write_text("from-file")
    hub = HubConfig(base_url="https://h/api", token_file=tmp_path / "token")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "AIHUB_TOKEN": "from-env"}
    assert hub.read_token(env) == SECRET
    assert hub.token_source(env) == f"systemd credential {creds / 'aihub-token'}"


def test_credentials_directory_without_our_credential_falls_through(tmp_path: Path) -> None:
    """A $CREDENTIALS_DIRECTORY lacking aihub-token does not hide the env var."""
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "AIHUB_TOKEN": SECRET}
    assert HubConfig(base_url="https://h/api").read_token(env) == SECRET


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("env_unset", "environment variable AIHUB_TOKEN is not set"),
        ("env_empty", "environment variable AIHUB_TOKEN is empty"),
        ("file_missing", "cannot read the API token from token file"),
        ("file_empty", "is empty"),
        ("inner_whitespace", "contains whitespace or control characters"),
    ],
)
def test_token_errors_name_the_source_never_the_value(
    tmp_path: Path, case: str, fragment: str
) -> None:
    """A missing or empty token raises TokenError naming the source and where to put a token."""
    env: dict[str, str] = {}
    token_file: Path | None = None
    if case == "env_empty":
        env["AIHUB_TOKEN"] = "  \n"
    elif case == "file_missing":
        token_file = tmp_path / "absent"
    elif case == "file_empty":
        token_file = tmp_path / "token"
        token_file.write_text("\n")
    elif case == "inner_whitespace":
        env["AIHUB_TOKEN"] = f"{SECRET} {SECRET}"
    hub = HubConfig(base_url="https://h/api", token_file=token_file)
    with pytest.raises(TokenError) as info:
        hub.read_token(env)
    message = str(info.value)
    assert fragment in message
    assert SECRET not in message
    if case != "inner_whitespace":
        assert "'aihub-token'" in message
        assert "hub.token_file" in message


def test_token_file_relative_to_config(tree: Path) -> None:
    """A relative token_file (and ca_bundle) is resolved against the config file's folder."""
    text = "hub:\n  base_url: https://h/api\n  token_file: tok\n  ca_bundle: ca.pem\n" + RULE_A
    hub = load(tree, text).hub
    assert hub.token_file == tree / "tok"
    assert hub.ca_bundle == tree / "ca.pem"
    unset = text.replace("tok\n", "${TOKEN_FILE:-}\n")
    assert load(tree, unset).hub.token_file is None


def test_hub_repr_has_no_token(tree: Path) -> None:
    """HubConfig records where the token is, never the token itself."""
    hub = load(tree, HEAD + RULE_A).hub
    assert SECRET not in repr(hub)
    assert "token" not in HubConfig.__dataclass_fields__


# --- ${VAR} expansion ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "errors"),
    [
        ("plain", "plain", []),
        ("${A}", "alpha", []),
        ("x-${A}-y", "x-alpha-y", []),
        ("${MISSING:-dflt}", "dflt", []),
        ("${EMPTY:-dflt}", "dflt", []),
        ("${EMPTY}", "", []),
        ("${A:-dflt}", "alpha", []),
        ("${MISSING:-}", "", []),
        ("$$", "$", []),
        ("$${A}", "${A}", []),
        ("cost $5", "cost $5", []),
        ("${MISSING}", "", ["environment variable MISSING is not set"]),
        ("${A", "", ["unterminated '${'"]),
        ("${not valid}", "", ["bad variable reference '${not valid}'"]),
    ],
)
def test_expand_env(text: str, expected: str, errors: list[str]) -> None:
    """${VAR}, ${VAR:-default} (unset or empty), $$ escapes, and errors for unset or bad syntax."""
    value, problems = expand_env(text, {"A": "alpha", "EMPTY": ""})
    assert len(problems) == len(errors)
    for problem, fragment in zip(problems, errors, strict=True):
        assert fragment in problem
    if not errors:
        assert value == expected


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


# --- derived values -----------------------------------------------------------------------


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


def test_rule_settings_are_read_only_copies(tree: Path) -> None:
    """Rule.settings is a read-only view of a private copy; settings_dict() gives a fresh copy."""
    source: dict[str, Any] = {"tags": ["a"], "keys": {"custom": {"k": "v"}}}
    rule = Rule(name="r", watch=Path("/w"), remote_dir="o", deployment_id="d", settings=source)
    source["tags"].append("mutated")
    assert isinstance(rule.settings, MappingProxyType)
    assert rule.settings["tags"] == ["a"]
    with pytest.raises(TypeError):
        rule.settings["tags"] = []  # type: ignore[index]
    copy = rule.settings_dict()
    copy["keys"]["custom"]["k"] = "changed"
    assert rule.settings["keys"]["custom"]["k"] == "v"
    assert hash(rule) == hash(Rule(name="r", watch=Path("/w"), remote_dir="o", deployment_id="d"))
    assert "settings" not in repr(rule)


def test_config_rule_lookup(tree: Path) -> None:
    """Config.rule(name) finds a rule or returns None."""
    config = load(tree, HEAD + RULE_A + RULE_B)
    rule_b = config.rule("b")
    assert rule_b is not None
    assert rule_b.deployment_id == "dep-2"
    assert config.rule("nope") is None


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


# --- reload diff and summary --------------------------------------------------------------


def test_diff_configs(tree: Path) -> None:
    """diff_configs names added, removed and changed rules, and hub or top-level changes."""
    old = load(tree, HEAD + RULE_A + RULE_B)
    assert diff_configs(old, old).empty
    text = HEAD.replace("/api", "/v2api") + "log_level: debug\n"
    text += RULE_A.replace("dep-1", "dep-9") + RULE_B.replace("name: b", "name: c")
    new = load(tree, text)
    diff = diff_configs(old, new)
    assert (diff.added, diff.removed, diff.changed) == (("c",), ("b",), ("a",))
    assert diff.hub_changed
    assert diff.top_level_changed == ("log_level",)
    assert diff.log_fields()["rules_added"] == ["c"]
    reordered = load(tree, HEAD + "rules:\n" + RULE_B + RULE_A.removeprefix("rules:\n"))
    assert diff_configs(old, reordered).empty


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
