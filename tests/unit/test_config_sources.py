"""The keys of issue 11: source, verify_remote, upload, results_dir and results_options.

Each mistake at its FILE:LINE:COL (golden rows, as in test_config_issues.py), the defaults,
the key-by-key merge of `upload:` and `results_options:` with defaults:, and the warnings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.config_helpers import HEAD, RULE_A, RULE_B, issues_of, load
from watcher.config import UploadSettings, input_dir_for, summary_table
from watcher.errors import ConfigError

MIB = 1024 * 1024

# Lines 4-8 like RULE_A (no remote_dir); an extra rule key appended is on line 9, col 5.
RULE_UP = "rules:\n  - name: a\n    watch: @TMP/a\n    source: upload\n    deployment_id: dep-1\n"

# (id, yaml, line, col, key_path, message fragment, severity)
ROWS: list[tuple[str, str, int, int, str, str, str]] = [
    (
        "source_unknown",
        HEAD + RULE_A + "    source: uplod\n",
        9,
        5,
        "rules[0].source",
        "must be one of: drive, upload (got 'uplod'); did you mean 'upload'?",
        "error",
    ),
    (
        "remote_dir_missing_for_drive",
        HEAD + "rules:\n  - name: a\n    watch: @TMP/a\n    source: drive\n    deployment_id: d\n",
        5,
        5,
        "rules[0].remote_dir",
        "missing required key 'remote_dir' (needed with source: drive, the default)",
        "error",
    ),
    (
        "remote_dir_null_for_drive",
        HEAD + RULE_A.replace("org/ws/fs/drive/a", "null"),
        7,
        5,
        "rules[0].remote_dir",
        "must be set with source: drive, the default (got nothing)",
        "error",
    ),
    (
        "remote_dir_empty_env_for_drive",
        HEAD + RULE_A.replace("org/ws/fs/drive/a", "${REMOTE_DIR:-}"),
        7,
        5,
        "rules[0].remote_dir",
        "must be set with source: drive, the default (got nothing)",
        "error",
    ),
    (
        "remote_dir_with_upload_warns",
        HEAD + RULE_UP + "    remote_dir: org/ws/fs/drive/a\n",
        9,
        5,
        "rules[0].remote_dir",
        "remote_dir is only used with source: drive; this rule has source: upload, so it is"
        " ignored",
        "warning",
    ),
    (
        "verify_remote_with_upload_warns",
        HEAD + RULE_UP + "    verify_remote: false\n",
        9,
        5,
        "rules[0].verify_remote",
        "verify_remote is only used with source: drive; this rule has source: upload",
        "warning",
    ),
    (
        "verify_timeout_with_upload_warns",
        HEAD + RULE_UP + "    verify_timeout_seconds: 60\n",
        9,
        5,
        "rules[0].verify_timeout_seconds",
        "verify_timeout_seconds is only used with source: drive",
        "warning",
    ),
    (
        "verify_remote_not_bool",
        HEAD + RULE_A + "    verify_remote: maybe\n",
        9,
        5,
        "rules[0].verify_remote",
        "expected true or false, got a string ('maybe')",
        "error",
    ),
    (
        "verify_timeout_zero",
        HEAD + RULE_A + "    verify_timeout_seconds: 0\n",
        9,
        5,
        "rules[0].verify_timeout_seconds",
        "must be between 1 and 604800 seconds (got 0)",
        "error",
    ),
    (
        "upload_with_drive_warns",
        HEAD + RULE_A + "    upload:\n      workspace: Finance\n",
        9,
        5,
        "rules[0].upload",
        "upload is only used with source: upload; this rule has source: drive, so it is ignored",
        "warning",
    ),
    (
        "upload_unknown_key",
        HEAD + RULE_UP + "    upload:\n      delete_batches: true\n",
        10,
        7,
        "rules[0].upload.delete_batches",
        "unknown key 'delete_batches'; did you mean 'delete_batch'?",
        "error",
    ),
    (
        "upload_not_a_mapping",
        HEAD + RULE_UP + "    upload: Finance\n",
        9,
        5,
        "rules[0].upload",
        "expected a mapping with workspace, delete_batch, single_put_max_bytes, part_size_bytes,"
        " max_file_bytes",
        "error",
    ),
    (
        "upload_delete_batch_not_bool",
        HEAD + RULE_UP + "    upload:\n      delete_batch: sometimes\n",
        10,
        7,
        "rules[0].upload.delete_batch",
        "expected true or false, got a string ('sometimes')",
        "error",
    ),
    (
        "upload_part_size_too_small",
        HEAD + RULE_UP + "    upload:\n      part_size_bytes: 100\n",
        10,
        7,
        "rules[0].upload.part_size_bytes",
        "must be between 1024 and 104857600 bytes (got 100)",
        "error",
    ),
    (
        "upload_single_put_too_big",
        HEAD + RULE_UP + "    upload: {single_put_max_bytes: 209715200}\n",
        9,
        14,
        "rules[0].upload.single_put_max_bytes",
        "must be between 1024 and 104857600 bytes (got 209715200)",
        "error",
    ),
    (
        "upload_max_file_zero",
        HEAD + RULE_UP + "    upload:\n      max_file_bytes: 0\n",
        10,
        7,
        "rules[0].upload.max_file_bytes",
        "must be between 1 and 1099511627776 bytes (got 0)",
        "error",
    ),
    (
        "upload_size_with_unit",
        HEAD + RULE_UP + "    upload:\n      part_size_bytes: 10MiB\n",
        10,
        7,
        "rules[0].upload.part_size_bytes",
        "expected an integer, got a string ('10MiB')",
        "error",
    ),
    (
        "upload_workspace_two_lines",
        HEAD + RULE_UP + '    upload:\n      workspace: "Fin\\nance"\n',
        10,
        7,
        "rules[0].upload.workspace",
        "must be a single line",
        "error",
    ),
    (
        "upload_at_top_level",
        HEAD + "upload: {workspace: x}\n" + RULE_A,
        4,
        1,
        "upload",
        "unknown key 'upload': it is a rule setting",
        "error",
    ),
    (
        "defaults_upload_unknown_key",
        HEAD + "defaults:\n  upload:\n    part_size: 65536\n" + RULE_A,
        6,
        5,
        "defaults.upload.part_size",
        "unknown key 'part_size'; did you mean 'part_size_bytes'?",
        "error",
    ),
    (
        "results_dir_relative",
        HEAD + RULE_A + '    results_dir: "results/{rule}"\n',
        9,
        5,
        "rules[0].results_dir",
        "must be an absolute local path (starting with '/'), e.g. /srv/results/{rule}"
        " (got 'results/{rule}')",
        "error",
    ),
    (
        "results_dir_deployment_id_placeholder",
        HEAD + RULE_A + '    results_dir: "/srv/{deployment_id}"\n',
        9,
        5,
        "rules[0].results_dir",
        "unknown placeholder '{deployment_id}'; use {rule}, {drop}, {date}, {date:%Y-%m-%d}",
        "error",
    ),
    (
        "results_dir_seq_placeholder",
        HEAD + RULE_A + '    results_dir: "/srv/{seq}"\n',
        9,
        5,
        "rules[0].results_dir",
        "'{seq}' is only available in batch_name",
        "error",
    ),
    (
        "results_dir_dotdot",
        HEAD + RULE_A + '    results_dir: "/srv/../{rule}"\n',
        9,
        5,
        "rules[0].results_dir",
        "renders like '/srv/../rule': '..' is not a folder name",
        "error",
    ),
    (
        "results_dir_inside_watch",
        HEAD + RULE_A + "    results_dir: @TMP/a/results/{date}\n",
        9,
        5,
        "rules[0].results_dir",
        "results_dir is inside rules[0].watch",
        "error",
    ),
    (
        "results_dir_renders_the_watch",
        HEAD + RULE_A + "    results_dir: @TMP/{rule}\n",
        9,
        5,
        "rules[0].results_dir",
        "results_dir is inside rules[0].watch",
        "error",
    ),
    (
        "results_dir_inside_another_rules_watch",
        HEAD + RULE_A + RULE_B + "    results_dir: @TMP/a/sub/{rule}\n",
        13,
        5,
        "rules[1].results_dir",
        "results_dir is inside rules[0].watch",
        "error",
    ),
    (
        "results_dir_inside_state_dir",
        HEAD + RULE_A + "    results_dir: @TMP/state/results\n",
        9,
        5,
        "rules[0].results_dir",
        "results_dir is inside state_dir",
        "error",
    ),
    (
        "results_options_unknown_flag",
        HEAD + RULE_A + "    results_options:\n      include_confidence_score: true\n",
        10,
        7,
        "rules[0].results_options.include_confidence_score",
        "did you mean 'include_confidence_scores'?",
        "error",
    ),
    (
        "results_options_file_offset",
        HEAD + RULE_A + "    results_options:\n      file_offset: 3\n",
        10,
        7,
        "rules[0].results_options.file_offset",
        "unknown key 'file_offset': the daemon sets it",
        "error",
    ),
    (
        "results_options_not_bool",
        HEAD + RULE_A + "    results_options:\n      include_source_info: 1\n",
        10,
        7,
        "rules[0].results_options.include_source_info",
        "expected true or false, got an integer (1)",
        "error",
    ),
    (
        "results_options_without_results_dir_warns",
        HEAD + RULE_A + "    results_options: {include_source_info: true}\n",
        9,
        5,
        "rules[0].results_options",
        "results_options has no effect without results_dir",
        "warning",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "col", "key_path", "fragment", "severity"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_each_mistake_is_reported_at_its_key(
    tree: Path, text: str, line: int, col: int, key_path: str, fragment: str, severity: str
) -> None:
    """Each mistake with the new keys yields an issue at the key's line and column."""
    issues = issues_of(tree, text)
    matching = [i for i in issues if i.key_path == key_path and fragment in i.message]
    assert matching, "\n".join(map(str, issues))
    issue = matching[0]
    assert (issue.line, issue.col, issue.severity) == (line, col, severity), str(issue)
    if severity == "error":
        with pytest.raises(ConfigError):
            load(tree, text)
    else:
        assert [i.severity for i in issues] == ["warning"], "\n".join(map(str, issues))


def test_check_line_of_a_new_key(tree: Path) -> None:
    """`check` prints a new key's mistake as FILE:LINE:COL: key.path: message."""
    issue = issues_of(tree, HEAD + RULE_UP + "    upload:\n      part_size_bytes: 100\n")[0]
    assert str(issue) == (
        f"{tree / 'config.yaml'}:10:7: rules[0].upload.part_size_bytes:"
        " must be between 1024 and 104857600 bytes (got 100)"
    )


def test_drive_rule_defaults(tree: Path) -> None:
    """A rule without the new keys reads from its drive, verifies it, and fetches no results."""
    config = load(tree, HEAD + RULE_A)
    rule = config.rules[0]
    assert (rule.source, rule.remote_dir) == ("drive", "org/ws/fs/drive/a")
    assert (rule.verify_remote, rule.verify_timeout_seconds) == (True, 3600.0)
    assert (rule.results_dir, dict(rule.results_options)) == (None, {})
    assert rule.upload == UploadSettings()
    assert config.warnings == ()


def test_upload_rule_defaults(tree: Path) -> None:
    """An upload rule needs no remote_dir; its upload settings have the documented defaults."""
    config = load(tree, HEAD + RULE_UP)
    rule = config.rules[0]
    assert (rule.source, rule.remote_dir) == ("upload", None)
    assert rule.upload.workspace is None
    assert rule.upload.delete_batch is True
    assert rule.upload.single_put_max_bytes == 10 * MIB
    assert rule.upload.part_size_bytes == 10 * MIB
    assert rule.upload.max_file_bytes == 50 * MIB
    assert config.warnings == ()
    with pytest.raises(ValueError, match="no remote_dir"):
        input_dir_for(rule, "batch1")
    assert "(upload)" in summary_table(config)


def test_upload_and_results_options_merge_with_defaults_key_by_key(tree: Path) -> None:
    """A rule's upload/results_options keys win one by one over defaults:; the rest inherit."""
    text = (
        HEAD
        + "defaults:\n"
        + "  source: upload\n"
        + "  upload: {workspace: Finance, delete_batch: false}\n"
        + "  results_options: {include_confidence_scores: true}\n"
        + "  results_dir: @TMP/results/{rule}\n"
        + "rules:\n"
        + "  - name: a\n    watch: @TMP/a\n    deployment_id: d\n"
        + "    upload: {part_size_bytes: 65536, workspace: null}\n"
        + "    results_options: {include_source_info: true}\n"
        + "  - name: b\n    watch: @TMP/b\n    deployment_id: d\n"
    )
    config = load(tree, text)
    a, b = config.rules
    assert a.upload == UploadSettings(workspace=None, delete_batch=False, part_size_bytes=65536)
    assert b.upload == UploadSettings(workspace="Finance", delete_batch=False)
    assert dict(a.results_options) == {
        "include_confidence_scores": True,
        "include_source_info": True,
    }
    assert dict(b.results_options) == {"include_confidence_scores": True}
    assert (a.results_dir, b.source, b.remote_dir) == (f"{tree}/results/{{rule}}", "upload", None)
    assert config.warnings == ()


def test_inherited_keys_never_warn(tree: Path) -> None:
    """Keys from defaults: that a rule's source does not use are silently ignored."""
    text = (
        HEAD
        + "defaults:\n  remote_dir: org/ws/fs/drive/x\n  verify_remote: false\n"
        + "  upload: {workspace: Finance}\n  results_options: {include_source_info: true}\n"
        + RULE_UP
        + RULE_B
    )
    config = load(tree, text)
    up, drive = config.rules
    assert (up.source, up.upload.workspace) == ("upload", "Finance")
    assert (drive.source, drive.verify_remote, drive.upload.workspace) == (
        "drive",
        False,
        "Finance",
    )
    assert config.warnings == ()


def test_defaults_remote_dir_serves_drive_rules(tree: Path) -> None:
    """With remote_dir in defaults: and source: drive, a rule may leave remote_dir out."""
    text = HEAD + "defaults:\n  remote_dir: org/shared\n" + RULE_UP.replace("upload", "drive")
    assert load(tree, text).rules[0].remote_dir == "org/shared"


def test_new_keys_take_env_references(tree: Path) -> None:
    """`${VAR:-default}` works in the new keys: plain ones expand to booleans and integers."""
    text = (
        HEAD
        + RULE_UP.replace("source: upload", "source: ${SOURCE:-upload}")
        + "    remote_dir: ${REMOTE_DIR:-}\n"
        + "    upload:\n"
        + "      workspace: ${AIHUB_WORKSPACE:-}\n"
        + "      delete_batch: ${DELETE_BATCH:-true}\n"
        + "      part_size_bytes: ${PART:-65536}\n"
        + "    results_dir: ${RESULTS:-@TMP/results}/{rule}\n"
    )
    rule = load(tree, text, env={"DELETE_BATCH": "false"}).rules[0]
    assert (rule.source, rule.remote_dir) == ("upload", None)
    assert rule.upload == UploadSettings(workspace=None, delete_batch=False, part_size_bytes=65536)
    assert rule.results_dir == f"{tree}/results/{{rule}}"


@pytest.mark.parametrize(
    "results_dir",
    ["@TMP/results/{rule}/{date:%Y}/{drop}", "@TMP/a-{date}", "@TMP/b-results", "/srv/r/{drop}"],
)
def test_results_dir_beside_the_watched_folders_is_fine(tree: Path, results_dir: str) -> None:
    """A results_dir next to (not inside) a watched folder or state_dir passes `check`."""
    text = HEAD + RULE_A + f"    results_dir: {results_dir}\n" + RULE_B
    assert issues_of(tree, text) == ()


def test_rule_upload_and_results_options_are_frozen(tree: Path) -> None:
    """rule.upload is a frozen dataclass and results_options a read-only mapping; rules hash."""
    extra = "    results_dir: /srv/r\n    results_options: {include_source_info: true}\n"
    rule = load(tree, HEAD + RULE_A + extra).rules[0]
    with pytest.raises(AttributeError):
        rule.upload.delete_batch = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        rule.results_options["include_source_info"] = False  # type: ignore[index]
    assert {rule: 1}[rule] == 1
