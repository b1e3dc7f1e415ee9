"""The keys of a rule (and of `defaults:`), declared once: type, default, range, check, help.

Core: imports only the stdlib and `watcher.config` (checks, keyspec, keys_upload).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from watcher.config import checks
from watcher.config.keys_upload import (
    RESULTS_OPTION_HINTS,
    RESULTS_OPTION_KEYS,
    RESULTS_OPTIONS_DEFAULT,
    UPLOAD_DEFAULTS,
    UPLOAD_KEYS,
)
from watcher.config.keyspec import KeySpec

SOURCES: Final = ("drive", "upload")
DROP_MODES: Final = ("folder", "files")
OBSERVER_KINDS: Final = ("inotify", "polling")

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
        name="source",
        kind="choice",
        default="drive",
        choices=SOURCES,
        doc="drive: AI Hub reads each drop from remote_dir; upload: each drop goes up as a batch",
    ),
    KeySpec(
        name="remote_dir",
        kind="str",
        nullable=True,
        required_when=("source", "drive"),
        applies_when=("source", "drive"),
        doc="the AI Hub path of `watch` (a connected drive that syncs it)",
        check=checks.check_remote_dir,
    ),
    KeySpec(
        name="verify_remote",
        kind="bool",
        default=True,
        applies_when=("source", "drive"),
        doc="submit a drop only once the drive shows each of its files at its local size",
    ),
    KeySpec(
        name="verify_timeout_seconds",
        kind="number",
        default=3600.0,
        minimum=1,
        maximum=604800,
        applies_when=("source", "drive"),
        doc="log an error when a drop's files are still missing remotely after this long",
    ),
    KeySpec(
        name="upload",
        kind="group",
        default=UPLOAD_DEFAULTS,
        keys=UPLOAD_KEYS,
        applies_when=("source", "upload"),
        doc="source: upload: the batch each drop is uploaded into, and the size limits",
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
        name="results_dir",
        kind="template",
        nullable=True,
        doc="local folder for each run's results, saved as <drop>.json (template; unset: none)",
        check=checks.check_results_dir,
    ),
    KeySpec(
        name="results_options",
        kind="group",
        default=RESULTS_OPTIONS_DEFAULT,
        keys=RESULTS_OPTION_KEYS,
        hints=RESULTS_OPTION_HINTS,
        doc="query flags for fetching the results, e.g. include_confidence_scores: true",
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
        name="active_hours",
        kind="str",
        nullable=True,
        doc='when the rule may submit, e.g. "Mon-Fri 07:00-19:00" (unset: always)',
        check=checks.check_active_hours,
    ),
    KeySpec(
        name="tz",
        kind="str",
        nullable=True,
        doc="IANA time zone of active_hours, e.g. Europe/Paris (unset: the host's)",
        check=checks.check_tz,
    ),
    KeySpec(
        name="priority",
        kind="int",
        default=0,
        minimum=-1000,
        maximum=1000,
        doc="when drops of several rules wait, higher priority is submitted first",
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
