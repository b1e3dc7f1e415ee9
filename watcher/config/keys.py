"""Every config key, declared once: type, default, range, check and help text.

Core: imports only the stdlib and `watcher.config.checks`. The parser, the dataclass defaults,
`json_schema()` and the test over config.example.yaml all read these tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from watcher.config import checks

DEFAULT_STATE_DIR: Final = "/var/lib/aihub-watcher"
DROP_MODES: Final = ("folder", "files")
OBSERVER_KINDS: Final = ("inotify", "polling")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
# The API caps the combined length of a run's tags at 500 characters, and the daemon adds one tag
# of its own (at most 40 characters), so a rule's own tags get what is left.
TAGS_MAX_TOTAL: Final = 500
TAGS_DAEMON_RESERVE: Final = 40

Kind = Literal[
    "str", "int", "number", "path", "choice", "action", "template", "globs", "settings", "section"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """One config key: its type, documentation, default and range.

    The validator, the dataclass defaults, `json_schema()` and the drift test over
    config.example.yaml all read these.
    """

    name: str
    kind: Kind
    doc: str  # one line; config.example.yaml carries it verbatim as the key's comment
    default: Any = None
    required: bool = False
    nullable: bool = False  # `null` (or leaving the key out) means None
    choices: tuple[str, ...] = ()  # choice: the values; action: the values besides move:<dir>
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    allow_seq: bool = False  # template: {seq} allowed
    relative_to_config: bool = False  # path: a relative value is resolved against the file's folder
    check: checks.Check | None = None  # extra semantic check; returns the value or INVALID


def defaults_of(specs: tuple[KeySpec, ...]) -> Mapping[str, Any]:
    """name -> default of every key that may be left out (the dataclasses' field defaults)."""
    return MappingProxyType({s.name: s.default for s in specs if not s.required})


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

RULE_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(
        name="name",
        kind="str",
        required=True,
        doc="unique rule name, used in logs, the ledger and {rule}",
        check=checks.check_name,
    ),
    KeySpec(
        name="watch",
        kind="path",
        required=True,
        doc="local folder to watch (absolute path)",
        check=checks.check_watch,
    ),
    KeySpec(
        name="remote_dir",
        kind="str",
        required=True,
        doc="the AI Hub path of `watch` (a connected drive that syncs it)",
        check=checks.check_remote_dir,
    ),
    KeySpec(
        name="deployment_id",
        kind="str",
        required=True,
        doc="AI Hub deployment that runs each drop",
        check=checks.check_deployment_id,
    ),
    KeySpec(
        name="output_dir",
        kind="template",
        nullable=True,
        doc="AI Hub folder for results (template); unset: the deployment's own output",
        check=checks.check_output_dir,
    ),
    KeySpec(
        name="version",
        kind="str",
        nullable=True,
        doc="app version to run (unset: the latest production version)",
        check=checks.empty_is_none,
    ),
    KeySpec(
        name="settings",
        kind="settings",
        default=MappingProxyType({}),
        doc="run settings sent as-is: keys.custom, keys.secret, runtime_config, tags",
    ),
    KeySpec(
        name="drop",
        kind="choice",
        default="folder",
        choices=DROP_MODES,
        doc="folder: each sub-folder is one run; files: loose files are batched into runs",
    ),
    KeySpec(
        name="settle_seconds",
        kind="number",
        default=5.0,
        minimum=0.05,
        maximum=86400,
        doc="a drop is ready once nothing in it changed for this long",
    ),
    KeySpec(
        name="ready_marker",
        kind="str",
        nullable=True,
        doc="suffix of a sibling marker file that marks a drop ready, e.g. .ready",
        check=checks.check_ready_marker,
    ),
    KeySpec(
        name="ignore",
        kind="globs",
        default=(),
        doc="extra file-name globs to treat as in progress (added to the built-in ones)",
    ),
    KeySpec(
        name="observer",
        kind="choice",
        default="inotify",
        choices=OBSERVER_KINDS,
        doc="inotify, or polling for network and FUSE mounts",
    ),
    KeySpec(
        name="poll_interval_seconds",
        kind="number",
        default=5.0,
        minimum=0.1,
        maximum=3600,
        doc="how often the polling observer looks (observer: polling)",
    ),
    KeySpec(
        name="rescan_seconds",
        kind="number",
        default=300.0,
        minimum=1,
        maximum=86400,
        doc="full rescan interval, a safety net for missed events",
    ),
    KeySpec(
        name="max_files",
        kind="int",
        default=100,
        minimum=1,
        maximum=10000,
        doc="files mode: most files in one batch",
    ),
    KeySpec(
        name="batch_name",
        kind="template",
        default="{date:%Y%m%d-%H%M%S}-{seq}",
        allow_seq=True,
        doc="files mode: batch folder name (template, also {seq})",
        check=checks.check_batch_name,
    ),
    KeySpec(
        name="on_change",
        kind="choice",
        default="ignore",
        choices=("ignore", "resubmit"),
        doc="a submitted drop changes: ignore it, or resubmit it as a new run",
    ),
    KeySpec(
        name="on_complete",
        kind="action",
        default="keep",
        choices=("keep", "delete"),
        doc="after a run completes: keep | delete | move:<absolute dir>",
    ),
    KeySpec(
        name="on_failure",
        kind="action",
        default="keep",
        # Deleting input that failed is never offered: it is the only copy an operator can retry.
        choices=("keep",),
        doc="after a run fails or is rejected: keep | move:<absolute dir>",
    ),
    KeySpec(
        name="max_attempts",
        kind="int",
        default=10,
        minimum=1,
        maximum=1000,
        doc="submission attempts before a drop is marked failed",
    ),
)

TOP_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(name="hub", kind="section", required=True, doc="how to reach AI Hub"),
    KeySpec(
        name="state_dir",
        kind="path",
        default=DEFAULT_STATE_DIR,
        relative_to_config=True,
        doc="where the ledger lives (unset: $STATE_DIRECTORY, else /var/lib/aihub-watcher)",
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
        name="defaults",
        kind="section",
        doc="any rule key except name, inherited by every rule (a rule's own value wins)",
    ),
    KeySpec(name="rules", kind="section", required=True, doc="the watched folders, one rule each"),
)

# settings.<key> -> doc (the shapes are checked in values.py and described in schema.py)
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
