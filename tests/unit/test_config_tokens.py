"""Token sources: the systemd credential, token_file, token_env; errors never hold the token."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.config_helpers import HEAD, RULE_A, SECRET, load
from watcher.config import HubConfig, token_path
from watcher.errors import TokenError


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


def test_hub_repr_has_no_token(tree: Path) -> None:
    """HubConfig records where the token is, never the token itself."""
    hub = load(tree, HEAD + RULE_A).hub
    assert SECRET not in repr(hub)
    assert "token" not in HubConfig.__dataclass_fields__


def test_token_path_is_the_file_read_token_reads(tmp_path: Path) -> None:
    """token_path names the credential, else token_file, else None for the env var."""
    hub = HubConfig(base_url="https://h/api")
    assert token_path(hub, {"AIHUB_TOKEN": SECRET}) is None
    token_file = tmp_path / "token"
    token_file.write_text(SECRET)
    with_file = HubConfig(base_url="https://h/api", token_file=token_file)
    assert token_path(with_file, {}) == token_file
    creds = tmp_path / "creds"
    creds.mkdir()
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert token_path(with_file, env) == token_file  # no aihub-token in it yet
    (creds / "aihub-token").write_text("from-credential")
    assert token_path(with_file, env) == creds / "aihub-token"
    assert token_path(hub, env) == creds / "aihub-token"
    assert with_file.read_token(env) == "from-credential"


def test_token_path_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `env`, the credential directory comes from os.environ (as the daemon runs)."""
    (tmp_path / "aihub-token").write_text(SECRET)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    hub = HubConfig(base_url="https://h/api")
    assert token_path(hub) == tmp_path / "aihub-token"
    assert hub.token_source() == f"systemd credential {tmp_path / 'aihub-token'}"
