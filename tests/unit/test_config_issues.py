"""Config issues: each mistake at its FILE:LINE:COL, all reported together, no token echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.config_helpers import HEAD, RULE_A, RULE_B, SECRET, issues_of, load
from watcher.errors import ConfigError

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
        "batch_name_that_looks_in_progress",
        HEAD + RULE_A + '    batch_name: "{seq}.tmp"\n',
        9,
        5,
        "rules[0].batch_name",
        "looks still being written: the batch would never be submitted",
        "error",
    ),
    (
        "deployment_id_dot_dot",
        HEAD + RULE_A.replace("dep-1", '".."'),
        8,
        5,
        "rules[0].deployment_id",
        "is not a valid deployment ID",
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
