"""Where the API token comes from, and reading it: the systemd credential, token_file, token_env.

Core: imports only the stdlib and `watcher.errors`. A token never reaches a message or a repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal, Protocol

from watcher.errors import TokenError

__all__ = ["CREDENTIAL_NAME", "TokenSettings", "read_token", "token_path", "token_source"]

CREDENTIAL_NAME: Final = "aihub-token"  # systemd LoadCredential=aihub-token:/path


class TokenSettings(Protocol):
    """The hub settings that say where the token is (`HubConfig` has them)."""

    @property
    def token_env(self) -> str: ...

    @property
    def token_file(self) -> Path | None: ...


def _source(
    hub: TokenSettings, env: Mapping[str, str] | None
) -> tuple[Literal["cred", "file", "env"], str]:
    # The one place that decides; first match wins.
    env = os.environ if env is None else env
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / CREDENTIAL_NAME
        if cred.is_file():
            return "cred", str(cred)
    if hub.token_file is not None:
        return "file", str(hub.token_file)
    return "env", hub.token_env


def token_path(hub: TokenSettings, env: Mapping[str, str] | None = None) -> Path | None:
    """The file the token is read from, or None when it comes from the env var `token_env`.

    That is `$CREDENTIALS_DIRECTORY/aihub-token` when systemd provides it, else `token_file`.
    """
    kind, where = _source(hub, env)
    return None if kind == "env" else Path(where)


def token_source(hub: TokenSettings, env: Mapping[str, str] | None = None) -> str:
    """Where `read_token()` would read the token, e.g. "env AIHUB_TOKEN" or "file /etc/x"."""
    kind, where = _source(hub, env)
    return {"cred": "systemd credential ", "file": "file ", "env": "env "}[kind] + where


def read_token(hub: TokenSettings, env: Mapping[str, str] | None = None) -> str:
    """Read the API token: systemd credential `aihub-token`, else token_file, else token_env.

    Raises:
        TokenError: the source is missing, unreadable or empty (never holds the token).
    """
    kind, where = _source(hub, env)
    hint = (
        f"put the token in the environment variable {hub.token_env} (hub.token_env),"
        f" in a file named by hub.token_file, or in the systemd credential {CREDENTIAL_NAME!r}"
        f" (LoadCredential={CREDENTIAL_NAME}:/path/to/token)"
    )
    if kind == "env":
        source = f"environment variable {where}"
        value = (os.environ if env is None else env).get(where)
        if value is None:
            raise TokenError(f"no API token: {source} is not set; {hint}")
    else:
        source = ("systemd credential " if kind == "cred" else "token file ") + where
        try:
            value = Path(where).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            # The exception text quotes bytes of the file: never show it.
            raise TokenError(f"cannot read the API token: {source} is not UTF-8 text") from None
        except OSError as exc:
            raise TokenError(
                f"cannot read the API token from {source}:"
                f" {exc.strerror or type(exc).__name__}; {hint}"
            ) from None
    token = value.strip()
    if not token:
        raise TokenError(f"no API token: {source} is empty; {hint}")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise TokenError(f"the API token from {source} contains whitespace or control characters")
    return token
