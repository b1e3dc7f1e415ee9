"""Shared text and helpers of the config tests: a valid head, two rules, load and issues."""

from __future__ import annotations

from pathlib import Path

from watcher.config import Config, load_config
from watcher.errors import ConfigError, ConfigIssue

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
