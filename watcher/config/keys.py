"""Every config key, declared once: type, default, range, check and help text.

Core: imports only the stdlib and `watcher.config` (checks, keyspec, keys_rules, keys_upload).
The parser, the dataclass defaults, `json_schema()` and the test over config.example.yaml all
read these tables; this module holds the hub and top-level ones and indexes them all by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from watcher.config import checks
from watcher.config.keys_rules import DROP_MODES, OBSERVER_KINDS, RULE_KEYS, SOURCES
from watcher.config.keys_state import STATE_DEFAULTS, STATE_KEYS
from watcher.config.keys_upload import RESULTS_OPTION_KEYS, UPLOAD_KEYS
from watcher.config.keyspec import KeySpec, Kind, defaults_of
from watcher.config.listen import check_listen

__all__ = [
    "DEFAULTS_BY_NAME",
    "DEFAULT_STATE_DIR",
    "DROP_MODES",
    "HUB_BY_NAME",
    "HUB_KEYS",
    "LOG_LEVELS",
    "METRICS_KEYS",
    "OBSERVER_KINDS",
    "RESULTS_OPTION_KEYS",
    "RULE_BY_NAME",
    "RULE_KEYS",
    "SETTINGS_KEYS",
    "SETTINGS_KEYS_KEYS",
    "SOURCES",
    "STATE_KEYS",
    "TAGS_DAEMON_RESERVE",
    "TAGS_MAX_TOTAL",
    "TOP_BY_NAME",
    "TOP_KEYS",
    "TOP_VALUE_KEYS",
    "UPLOAD_KEYS",
    "KeySpec",
    "Kind",
    "defaults_of",
]

DEFAULT_STATE_DIR: Final = "/var/lib/aihub-watcher"
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
# The API caps the combined length of a run's tags at 500 characters, and the daemon adds one tag
# of its own (at most 40 characters), so a rule's own tags get what is left.
TAGS_MAX_TOTAL: Final = 500
TAGS_DAEMON_RESERVE: Final = 40


HUB_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(
        name="base_url",
        kind="str",
        required=True,
        doc="AI Hub API root URL (https), e.g. https://aihub.instabase.com/api",
        check=checks.check_base_url,
    ),
    KeySpec(
        name="context",
        kind="str",
        nullable=True,
        doc="IB-Context header: the organization or user the runs belong to (optional)",
        check=checks.check_context,
    ),
    KeySpec(
        name="token_env",
        kind="str",
        default="AIHUB_TOKEN",
        doc="name of the environment variable that holds the API token",
        check=checks.check_token_env,
    ),
    KeySpec(
        name="token_file",
        kind="path",
        nullable=True,
        relative_to_config=True,
        doc="file holding the API token; used instead of token_env when set",
    ),
    KeySpec(
        name="max_concurrency",
        kind="int",
        default=4,
        minimum=1,
        maximum=64,
        doc="most run submissions in flight at once (1-64)",
    ),
    KeySpec(
        name="max_rps",
        kind="number",
        nullable=True,
        exclusive_minimum=0,
        doc="most requests per second to AI Hub (unset: no limit)",
    ),
    KeySpec(
        name="timeout_seconds",
        kind="number",
        default=30.0,
        exclusive_minimum=0,
        maximum=3600,
        doc="seconds to wait for an AI Hub response",
    ),
    KeySpec(
        name="connect_timeout_seconds",
        kind="number",
        default=10.0,
        exclusive_minimum=0,
        maximum=600,
        doc="seconds to wait for a connection to AI Hub",
    ),
    KeySpec(
        name="ca_bundle",
        kind="path",
        nullable=True,
        relative_to_config=True,
        doc="PEM file of CA certificates to trust instead of the system store",
        check=checks.check_ca_bundle,
    ),
)

METRICS_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(
        name="listen",
        kind="str",
        nullable=True,
        doc="host:port to serve /metrics and /healthz on, e.g. 127.0.0.1:9464 (unset: off)",
        check=check_listen,
    ),
)

TOP_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(name="hub", kind="section", required=True, doc="how to reach AI Hub"),
    KeySpec(
        name="state_dir",
        kind="path",
        default=DEFAULT_STATE_DIR,
        relative_to_config=True,
        doc="lock file and sqlite ledger (unset: $STATE_DIRECTORY, else /var/lib/aihub-watcher)",
    ),
    KeySpec(
        name="state",
        kind="group",
        default=STATE_DEFAULTS,
        keys=STATE_KEYS,
        doc="the ledger's storage: sqlite (the default) or a shared postgresql database",
    ),
    KeySpec(
        name="log_level",
        kind="choice",
        default="info",
        choices=LOG_LEVELS,
        doc="debug | info | warning | error",
    ),
    KeySpec(
        name="shutdown_timeout_seconds",
        kind="number",
        default=10.0,
        exclusive_minimum=0,
        maximum=3600,
        doc="on stop, how long in-flight submissions may take to finish",
    ),
    KeySpec(
        name="metrics",
        kind="group",
        default=defaults_of(METRICS_KEYS),
        keys=METRICS_KEYS,
        doc="Prometheus metrics and a health check over HTTP (leave it out: no listener)",
    ),
    KeySpec(
        name="defaults",
        kind="section",
        doc="any rule key except name, inherited by every rule (a rule's own value wins)",
    ),
    KeySpec(name="rules", kind="section", required=True, doc="the watched folders, one rule each"),
)

# settings.<key> -> doc (the shapes are checked in settings.py and described in schema.py)
SETTINGS_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "keys": "values for the deployment's custom and secret keys",
        "runtime_config": "runtime configuration, e.g. generate_post_process_pdf",
        "tags": "tags attached to each run (the rule's tags total at most 460 characters)",
    }
)
SETTINGS_KEYS_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "custom": "custom key name -> value",
        "secret": "secret key name -> name of a secret in the organization's vault",
    }
)

HUB_BY_NAME: Final = MappingProxyType({s.name: s for s in HUB_KEYS})
RULE_BY_NAME: Final = MappingProxyType({s.name: s for s in RULE_KEYS})
TOP_BY_NAME: Final = MappingProxyType({s.name: s for s in TOP_KEYS})
# What `defaults:` may set: every rule key but the name, which each rule needs of its own.
DEFAULTS_BY_NAME: Final = MappingProxyType({s.name: s for s in RULE_KEYS if s.name != "name"})
# The top-level keys that hold a value rather than a section: state_dir, log_level, ...
TOP_VALUE_KEYS: Final = tuple(s.name for s in TOP_KEYS if s.kind != "section")
