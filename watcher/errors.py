"""The root of the exception tree and the errors of the core: config, token, ledger.

Core: imports nothing from `watcher`. The hub's errors hang below `WatcherError` in
`watcher.hub.errors`.

    WatcherError
    ├── ConfigError               .issues
    ├── TokenError                no usable token (message says where to put one, never the token)
    ├── LedgerError
    │   └── LedgerUnavailableError  the database server cannot be reached now (worth a retry)
    └── HubError                  see watcher.hub.errors
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    """One problem found in a config file, pointing at the offending key."""

    file: str
    line: int
    col: int
    key_path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {self.key_path}: {prefix}{self.message}"


class WatcherError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(WatcherError):
    """The config file has one or more errors; `.issues` lists all of them (warnings too)."""

    def __init__(self, issues: tuple[ConfigIssue, ...] | list[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        errors = [i for i in self.issues if i.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in config:\n" + "\n".join(map(str, errors)))


class TokenError(WatcherError):
    """No API token could be read from the configured sources."""


class LedgerError(WatcherError):
    """The ledger database cannot be opened or is unusable."""


class LedgerUnavailableError(LedgerError):
    """The ledger's database server cannot be reached right now (it refused the connection,
    dropped it, or is shutting down): nothing is wrong with the ledger; try again later."""


class StartupError(WatcherError):
    """The daemon cannot start with this configuration (e.g. an unusable CA bundle)."""


class AlreadyRunningError(StartupError):
    """Another daemon holds the state directory's lock."""

    def __init__(self, message: str, *, pid: int | None) -> None:
        self.pid = pid
        super().__init__(message)
