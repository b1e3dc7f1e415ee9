"""The validated config as frozen dataclasses: HubConfig, StateSettings, UploadSettings, Rule,
Config.

Core: imports only the stdlib and this package. Every field default comes from the key tables.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

from watcher.config import tokens
from watcher.config.keys import (
    HUB_KEYS,
    METRICS_KEYS,
    RULE_KEYS,
    STATE_KEYS,
    TOP_KEYS,
    UPLOAD_KEYS,
    defaults_of,
)
from watcher.config.listen import parse_listen
from watcher.config.schedule import Schedule, parse_schedule
from watcher.errors import ConfigIssue
from watcher.redact import redact_dsn

__all__ = ["Config", "HubConfig", "MetricsSettings", "Rule", "StateSettings", "UploadSettings"]

_HUB: Final = defaults_of(HUB_KEYS)
_RULE: Final = defaults_of(RULE_KEYS)
_UPLOAD: Final = defaults_of(UPLOAD_KEYS)
_TOP: Final = defaults_of(TOP_KEYS)
_STATE: Final = defaults_of(STATE_KEYS)
_METRICS: Final = defaults_of(METRICS_KEYS)


@dataclass(frozen=True, slots=True, kw_only=True)
class HubConfig:
    """How to reach AI Hub. Records where the token comes from, never the token."""

    base_url: str
    context: str | None = _HUB["context"]
    token_env: str = _HUB["token_env"]
    token_file: Path | None = _HUB["token_file"]
    max_concurrency: int = _HUB["max_concurrency"]
    max_rps: float | None = _HUB["max_rps"]
    timeout_seconds: float = _HUB["timeout_seconds"]
    connect_timeout_seconds: float = _HUB["connect_timeout_seconds"]
    ca_bundle: Path | None = _HUB["ca_bundle"]

    def token_source(self, env: Mapping[str, str] | None = None) -> str:
        """Where `read_token()` would read the token, e.g. "env AIHUB_TOKEN" or "file /etc/x"."""
        return tokens.token_source(self, env)

    def read_token(self, env: Mapping[str, str] | None = None) -> str:
        """Read the API token: systemd credential `aihub-token`, else token_file, else token_env.

        Raises:
            TokenError: the source is missing, unreadable or empty (never holds the token).
        """
        return tokens.read_token(self, env)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class StateSettings:
    """`state:`: where the ledger lives. The DSN may hold a password: the repr masks it."""

    backend: Literal["sqlite", "postgresql"] = _STATE["backend"]
    dsn: str | None = _STATE["dsn"]
    host_id: str | None = _STATE["host_id"]
    lease_seconds: float = _STATE["lease_seconds"]

    def __repr__(self) -> str:
        dsn = None if self.dsn is None else redact_dsn(self.dsn)
        return (
            f"StateSettings(backend={self.backend!r}, dsn={dsn!r}, host_id={self.host_id!r}, "
            f"lease_seconds={self.lease_seconds!r})"
        )


def _frozen_settings(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(value)))


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadSettings:
    """`upload:` of a rule (source: upload): the batch's workspace, what to do with it after the
    run, and the byte limits. Every rule has one, with the table's defaults."""

    workspace: str | None = _UPLOAD["workspace"]
    delete_batch: bool = _UPLOAD["delete_batch"]
    single_put_max_bytes: int = _UPLOAD["single_put_max_bytes"]
    part_size_bytes: int = _UPLOAD["part_size_bytes"]
    max_file_bytes: int = _UPLOAD["max_file_bytes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One watched folder routed to one deployment.

    `settings` is a read-only `MappingProxyType` over a private deep copy (nested values are plain
    JSON types); use `settings_dict()` for a mutable, JSON-ready copy. It is left out of the hash,
    as is `results_options` (read-only too: query flag -> bool, only the flags the config sets).
    `remote_dir` is None only for source: upload. `results_dir` is a template: see
    `results_path_for()`. `active_hours` (None: always open) carries the rule's `tz`; ask it
    with `watcher.config.schedule.is_open` / `next_opening`. Higher `priority` submits first.
    """

    name: str
    watch: Path
    source: Literal["drive", "upload"] = _RULE["source"]
    remote_dir: str | None = _RULE["remote_dir"]
    verify_remote: bool = _RULE["verify_remote"]
    verify_timeout_seconds: float = _RULE["verify_timeout_seconds"]
    upload: UploadSettings = field(default_factory=UploadSettings)
    deployment_id: str
    output_dir: str | None = _RULE["output_dir"]
    version: str | None = _RULE["version"]
    settings: Mapping[str, Any] = field(
        default_factory=lambda: _RULE["settings"], hash=False, repr=False
    )
    results_dir: str | None = _RULE["results_dir"]
    results_options: Mapping[str, Any] = field(
        default_factory=lambda: _RULE["results_options"], hash=False
    )
    drop: Literal["folder", "files"] = _RULE["drop"]
    settle_seconds: float = _RULE["settle_seconds"]
    ready_marker: str | None = _RULE["ready_marker"]
    ignore: tuple[str, ...] = _RULE["ignore"]
    observer: Literal["inotify", "polling"] = _RULE["observer"]
    poll_interval_seconds: float = _RULE["poll_interval_seconds"]
    rescan_seconds: float = _RULE["rescan_seconds"]
    max_files: int = _RULE["max_files"]
    batch_name: str = _RULE["batch_name"]
    on_change: Literal["ignore", "resubmit"] = _RULE["on_change"]
    on_complete: str = _RULE["on_complete"]
    on_failure: str = _RULE["on_failure"]
    active_hours: Schedule | None = _RULE["active_hours"]
    tz: str | None = _RULE["tz"]
    priority: int = _RULE["priority"]
    max_attempts: int = _RULE["max_attempts"]

    def __post_init__(self) -> None:
        # Callers (tests, reload) may pass a plain dict: never keep a reference they can mutate.
        object.__setattr__(self, "settings", _frozen_settings(self.settings))
        object.__setattr__(self, "results_options", _frozen_settings(self.results_options))
        given: object = self.active_hours
        if isinstance(given, str):  # a caller's text, as in the config
            object.__setattr__(self, "active_hours", parse_schedule(given))
        if self.active_hours is not None and self.active_hours.tz != self.tz:
            # The schedule carries the rule's zone, so is_open(rule.active_hours, t) is complete.
            object.__setattr__(self, "active_hours", replace(self.active_hours, tz=self.tz))

    def settings_dict(self) -> dict[str, Any]:
        """A deep, mutable copy of `settings` (plain dicts/lists), ready for a JSON request body."""
        return copy.deepcopy(dict(self.settings))


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    """`metrics:`: where to serve /metrics and /healthz; `listen` None means no listener."""

    listen: str | None = _METRICS["listen"]

    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, or None when metrics are off (`listen` was checked)."""
        return None if self.listen is None else parse_listen(self.listen)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A validated config. A reload builds a new one; nothing mutates it."""

    path: Path
    hub: HubConfig
    state_dir: Path
    state: StateSettings = field(default_factory=StateSettings)
    log_level: str = _TOP["log_level"]
    shutdown_timeout_seconds: float = _TOP["shutdown_timeout_seconds"]
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    rules: tuple[Rule, ...]
    warnings: tuple[ConfigIssue, ...] = ()
