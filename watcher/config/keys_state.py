"""The keys of the top-level `state:` mapping (where the ledger lives), declared once.

Core: imports only the stdlib and `watcher.config` (checks, keyspec).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from watcher.config.checks import At
from watcher.config.keyspec import KeySpec, defaults_of

BACKENDS: Final = ("sqlite", "postgresql")
DSN_SCHEMES: Final = ("postgresql://", "postgres://")


def check_dsn(value: str | None, at: At) -> Any:
    """A postgresql:// URI; never echoed, as it may hold a password."""
    if value is None or value == "":
        return None  # `dsn: ${AIHUB_WATCHER_DSN:-}` means "not set"
    if not value.startswith(DSN_SCHEMES):
        return at.error(
            "must be a connection URI starting with postgresql://, "
            "e.g. postgresql://watcher@db.example.com:5432/aihub"
        )
    if any(ch in value for ch in "\r\n\0"):
        return at.error("must be a single line")
    return value


def check_host_id(value: str | None, at: At) -> Any:
    if value is None or value == "":
        return None  # the host name
    if len(value) > 64 or any(not ch.isprintable() or ch.isspace() for ch in value):
        return at.error("must be at most 64 printable characters without spaces")
    return value


STATE_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(
        name="backend",
        kind="choice",
        default="sqlite",
        choices=BACKENDS,
        doc="sqlite: a file in state_dir | postgresql: a database several hosts can share",
    ),
    KeySpec(
        name="dsn",
        kind="str",
        nullable=True,
        check=check_dsn,
        doc="backend: postgresql: the database's URI, e.g. postgresql://watcher@db/aihub",
    ),
    KeySpec(
        name="host_id",
        kind="str",
        nullable=True,
        check=check_host_id,
        doc="postgresql: this host's name in claims and `status` (unset: the host name)",
    ),
    KeySpec(
        name="lease_seconds",
        kind="number",
        default=30.0,
        minimum=2,
        maximum=3600,
        doc="postgresql: a silent host's drops pass to another host after this long",
    ),
)

STATE_DEFAULTS: Final[Mapping[str, object]] = defaults_of(STATE_KEYS)
