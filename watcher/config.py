"""The YAML config: key tables, one-pass validation with FILE:LINE:COL issues, frozen dataclasses.

Pure: imports only the stdlib, `yaml` and `watcher.errors`; never `watcher.rules` (it imports us).
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import ipaddress
import math
import os
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import yaml

from watcher.errors import ConfigError, ConfigIssue, Severity, TokenError

__all__ = [
    "CREDENTIAL_NAME",
    "DEFAULT_DATE_FORMAT",
    "DEFAULT_STATE_DIR",
    "DROP_MODES",
    "HUB_KEYS",
    "LOG_LEVELS",
    "OBSERVER_KINDS",
    "RULE_KEYS",
    "SEQ_FIELD",
    "SETTINGS_KEYS",
    "SETTINGS_KEYS_KEYS",
    "TAGS_DAEMON_RESERVE",
    "TAGS_MAX_TOTAL",
    "TEMPLATE_FIELDS",
    "TOP_KEYS",
    "Config",
    "ConfigDiff",
    "HubConfig",
    "KeySpec",
    "Rule",
    "TemplatePart",
    "diff_configs",
    "expand_env",
    "json_schema",
    "load_config",
    "parse_config",
    "parse_template",
    "summary_table",
    "template_errors",
]

DEFAULT_STATE_DIR: Final = "/var/lib/aihub-watcher"
CREDENTIAL_NAME: Final = "aihub-token"  # systemd LoadCredential=aihub-token:/path
DROP_MODES: Final = ("folder", "files")
OBSERVER_KINDS: Final = ("inotify", "polling")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
# The API caps the combined length of a run's tags at 500 characters, and the daemon adds one tag
# of its own (at most 40 characters), so a rule's own tags get what is left.
TAGS_MAX_TOTAL: Final = 500
TAGS_DAEMON_RESERVE: Final = 40
RULE_NAME_MAX: Final = 64
# Key names that only ever hold an API token: refused wherever they appear (see _token_key).
TOKEN_KEYS: Final = frozenset({"token", "api_key", "api_token", "apikey", "authorization"})

_STR_TAG: Final = "tag:yaml.org,2002:str"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENV_REF_RE: Final = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{))")
_RULE_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_DEPLOYMENT_ID_RE: Final = re.compile(r"[^/\s?#%]+\Z")
_TOKEN_EXEMPT_PARENT_RE: Final = re.compile(r"(?:^|\.)settings\.keys\.(?:custom|secret)\Z")


# --- templates (output_dir, batch_name) ------------------------------------------------------
# The grammar lives here, not in rules.py, because validation needs it and rules.py imports us.

TEMPLATE_FIELDS: Final = ("rule", "drop", "date", "deployment_id")
SEQ_FIELD: Final = "seq"
DEFAULT_DATE_FORMAT: Final = "%Y-%m-%d"
_SAMPLE_NOW: Final = datetime(2001, 2, 3, 4, 5, 6)  # only probes strftime formats


@dataclass(frozen=True, slots=True)
class TemplatePart:
    """Literal text followed by an optional placeholder (`field` None at the end)."""

    literal: str
    field: str | None
    spec: str


def parse_template(
    template: str, *, allow_seq: bool = False
) -> tuple[tuple[TemplatePart, ...], tuple[str, ...]]:
    """Split a template into parts; the second item lists every problem (empty when valid).

    A template with no problems renders without raising for any rule, drop, deployment and time.
    """
    allowed = (*TEMPLATE_FIELDS, SEQ_FIELD) if allow_seq else TEMPLATE_FIELDS
    listing = ", ".join(
        ["{rule}", "{drop}", "{date}", "{date:%Y-%m-%d}", "{deployment_id}"]
        + (["{seq}"] if allow_seq else [])
    )
    try:
        raw = list(string.Formatter().parse(template))
    except ValueError as exc:
        return (), (f"bad template: {exc}; write '{{{{' or '}}}}' for a literal brace",)
    parts: list[TemplatePart] = []
    errors: list[str] = []
    for literal, name, raw_spec, conversion in raw:
        if name is None:
            parts.append(TemplatePart(literal, None, ""))
            continue
        spec = raw_spec or ""
        if conversion is not None:
            errors.append(f"conversions like '!{conversion}' are not supported in '{{{name}}}'")
            continue
        if name == SEQ_FIELD and not allow_seq:
            errors.append("'{seq}' is only available in batch_name")
            continue
        if name not in allowed:
            shown = "{" + name + (":" + spec if spec else "") + "}"
            errors.append(f"unknown placeholder '{shown}'; use {listing}")
            continue
        if "{" in spec or "}" in spec:
            errors.append(f"nested placeholders are not allowed in '{{{name}:{spec}}}'")
            continue
        try:
            if name == "date":
                _SAMPLE_NOW.strftime(spec or DEFAULT_DATE_FORMAT)
            elif name == SEQ_FIELD:
                format(1, spec)
            else:
                format("x", spec)
        except ValueError as exc:
            errors.append(f"bad format in '{{{name}:{spec}}}': {exc}")
            continue
        parts.append(TemplatePart(literal, name, spec))
    return tuple(parts), tuple(errors)


def template_errors(template: str, *, allow_seq: bool = False) -> list[str]:
    """Every problem with a template (unknown placeholders, bad formats); empty when valid."""
    return list(parse_template(template, allow_seq=allow_seq)[1])


# --- ${VAR} expansion ------------------------------------------------------------------------


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand `${VAR}` and `${VAR:-default}` (default when unset or empty); `$$` is a literal `$`.

    Returns the expanded text and the problems (an unset variable without a default, bad syntax).
    """
    out: list[str] = []
    errors: list[str] = []
    pos = 0
    for m in _ENV_REF_RE.finditer(text):
        out.append(text[pos : m.start()])
        pos = m.end()
        if m.group(1):
            out.append("$")
            continue
        if m.group(3):
            errors.append("unterminated '${'; write '$$' for a literal '$'")
            continue
        body = m.group(2)
        name, sep, default = body.partition(":-")
        if not _ENV_NAME_RE.match(name):
            errors.append(
                f"bad variable reference '${{{body}}}': use ${{NAME}} or ${{NAME:-default}}"
                " (write '$$' for a literal '$')"
            )
            continue
        value = env.get(name)
        if sep:
            out.append(value or default)
        elif value is None:
            errors.append(
                f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"
            )
        else:
            out.append(value)
    out.append(text[pos:])
    return "".join(out), errors


# --- key tables: one truth for the validator, json_schema() and config.example.yaml ----------

Kind = Literal[
    "str", "int", "number", "path", "choice", "action", "template", "globs", "settings", "section"
]


class _Invalid:
    """Marks a value that failed validation (its issue is already recorded)."""

    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Final = _Invalid()


@dataclass(slots=True)
class _At:
    """Where a value came from, so a check can report against the offending key."""

    ctx: _Parser
    node: yaml.Node
    path: str

    def error(self, message: str) -> _Invalid:
        self.ctx.issue(self.node, self.path, message)
        return _INVALID

    def warn(self, message: str) -> None:
        self.ctx.issue(self.node, self.path, message, severity="warning")


_Check = Callable[[Any, _At], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """One config key: its type, documentation, default and range.

    The validator, `json_schema()` and the drift test over config.example.yaml all read these.
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
    check: _Check | None = None  # extra semantic check; returns the normalised value or _INVALID


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(value: str, at: _At) -> Any:
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return at.error(f"is not a valid URL: {exc}")
    if parts.scheme not in ("http", "https"):
        return at.error(
            "must start with https:// (or http:// for a test server on loopback),"
            " e.g. https://aihub.instabase.com/api"
        )
    if not host:
        return at.error("has no host name")
    if parts.username is not None or parts.password is not None:
        # Never echo it: it may hold a password.
        return at.error("must not contain user credentials; the token comes from hub.token_env")
    if parts.query or parts.fragment or value.rstrip().endswith(("?", "#")):
        return at.error("must not have a query string or fragment")
    if parts.scheme == "http" and not _is_loopback(host):
        at.warn(f"plain http to {host} sends the API token unencrypted; use https")
    return value.rstrip("/")


def _check_context(value: str | None, at: _At) -> Any:
    if value is None or value == "":
        return None  # lets `context: ${AIHUB_CONTEXT:-}` mean "no IB-Context header"
    if any(ch in value for ch in "\r\n\0"):
        return at.error("must be a single line (it is sent as the IB-Context header)")
    return value


def _empty_is_none(value: str | None, _at: _At) -> Any:
    return value or None  # `${VERSION:-}` means "not set"


def _check_token_env(value: str, at: _At) -> Any:
    if not _ENV_NAME_RE.match(value):
        # The value is not echoed: people paste the token itself here.
        return at.error(
            "must be the name of an environment variable (like AIHUB_TOKEN), not the token itself"
        )
    return value


def _check_ca_bundle(value: Path | None, at: _At) -> Any:
    if value is not None and not value.is_file():
        return at.error(f"{value} does not exist or is not a file")
    return value


def _check_name(value: str, at: _At) -> Any:
    if not _RULE_NAME_RE.match(value) or len(value) > RULE_NAME_MAX:
        return at.error(
            f"rule names use letters, digits, '.', '_' and '-', start with a letter or digit"
            f" and have at most {RULE_NAME_MAX} characters (got {value!r})"
        )
    return value


def _check_watch(value: Path, at: _At) -> Any:
    if not value.is_absolute():
        return at.error(f"must be an absolute path (got {str(value)!r})")
    if not value.exists():
        at.warn(f"{value} does not exist yet; the daemon waits for it")
    elif not value.is_dir():
        return at.error(f"{value} is not a directory")
    return value


def _check_remote_dir(value: str, at: _At) -> Any:
    stripped = value.rstrip("/")
    if not stripped.strip():
        return at.error("must not be empty; it is the AI Hub path of the watched folder")
    if stripped.startswith("/"):
        return at.error(
            "AI Hub paths start with the organization or user, not '/'"
            " (e.g. 'acme/Finance/fs/Google Drive/My Drive/drops')"
        )
    segments = stripped.split("/")
    if ".." in segments:
        return at.error("must not contain '..' segments")
    if "" in segments:
        return at.error("must not contain empty segments ('//')")
    if "." in segments:
        return at.error("must not contain '.' segments")
    return stripped


def _check_deployment_id(value: str, at: _At) -> Any:
    if not _DEPLOYMENT_ID_RE.match(value):
        return at.error(
            "is not a valid deployment ID (copy it from the deployment's URL in AI Hub,"
            " e.g. 01902d6f-bb35-74cb-bd27-c09b38bbf20a)"
        )
    return value


def _path_segments_ok(rendered: str, at: _At, *, what: str) -> bool:
    if rendered.startswith("/"):
        at.error(f"{what} is an AI Hub path: it starts with the organization or user, not '/'")
        return False
    if ".." in rendered.split("/"):
        at.error(f"{what} must not contain '..' segments")
        return False
    return True


def _check_output_dir(value: str | None, at: _At) -> Any:
    if not value:
        return None  # `${OUTPUT_DIR:-}` means "not set"
    errors = template_errors(value)
    for message in errors:
        at.error(message)
    if errors:
        return _INVALID
    sample = _render_sample(value, allow_seq=False)
    if not _path_segments_ok(sample, at, what="output_dir"):
        return _INVALID
    return value


def _check_batch_name(value: str, at: _At) -> Any:
    errors = template_errors(value, allow_seq=True)
    for message in errors:
        at.error(message)
    if errors:
        return _INVALID
    sample = _render_sample(value, allow_seq=True)
    if not sample.strip() or "/" in sample or sample in (".", ".."):
        return at.error(
            f"must render to a single folder name, without '/' (renders like {sample!r})"
        )
    return value


def _render_sample(template: str, *, allow_seq: bool) -> str:
    parts, _ = parse_template(template, allow_seq=allow_seq)
    values = {"rule": "rule", "drop": "drop", "deployment_id": "deployment", SEQ_FIELD: 1}
    out: list[str] = []
    for part in parts:
        out.append(part.literal)
        if part.field == "date":
            out.append(_SAMPLE_NOW.strftime(part.spec or DEFAULT_DATE_FORMAT))
        elif part.field is not None:
            out.append(format(values[part.field], part.spec))
    return "".join(out)


def _check_ready_marker(value: str | None, at: _At) -> Any:
    if value is None:
        return None
    if not value or "/" in value or "\0" in value or value in (".", ".."):
        return at.error(
            "must be a non-empty file name suffix without '/' (e.g. '.ready': a sibling file"
            " <drop>.ready marks the drop ready)"
        )
    return value


def _glob_problem(pattern: str) -> str | None:
    if not pattern:
        return "empty pattern"
    if "/" in pattern:
        return f"pattern {pattern!r} contains '/'; patterns match file names, not paths"
    if "\0" in pattern:
        return "pattern contains a NUL character"
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            # fnmatch treats an unclosed '[' as a literal, which is never what was meant.
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                return f"pattern {pattern!r} has an unclosed '['"
            i = close
        i += 1
    try:
        re.compile(fnmatch.translate(pattern))
    except re.error as exc:
        return f"bad pattern {pattern!r}: {exc}"
    return None


def _action_check(value: str, at: _At, *, choices: tuple[str, ...]) -> Any:
    if value in choices:
        return value
    if value.startswith("move:"):
        target = value[len("move:") :]
        if not target or not Path(target).is_absolute():
            return at.error(f"move:<dir> needs an absolute directory (got {value!r})")
        return value
    allowed = " | ".join((*choices, "move:<absolute dir>"))
    return at.error(f"must be {allowed} (got {value!r})")


def _check_on_complete(value: str, at: _At) -> Any:
    return _action_check(value, at, choices=("keep", "delete"))


def _check_on_failure(value: str, at: _At) -> Any:
    # Deleting input that failed is never offered: it is the only copy an operator can retry.
    return _action_check(value, at, choices=("keep",))


HUB_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(
        name="base_url",
        kind="str",
        required=True,
        doc="AI Hub API root URL (https), e.g. https://aihub.instabase.com/api",
        check=_check_base_url,
    ),
    KeySpec(
        name="context",
        kind="str",
        nullable=True,
        doc="IB-Context header: the organization or user the runs belong to (optional)",
        check=_check_context,
    ),
    KeySpec(
        name="token_env",
        kind="str",
        default="AIHUB_TOKEN",
        doc="name of the environment variable that holds the API token",
        check=_check_token_env,
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
        check=_check_ca_bundle,
    ),
)

RULE_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(
        name="name",
        kind="str",
        required=True,
        doc="unique rule name, used in logs, the ledger and {rule}",
        check=_check_name,
    ),
    KeySpec(
        name="watch",
        kind="path",
        required=True,
        doc="local folder to watch (absolute path)",
        check=_check_watch,
    ),
    KeySpec(
        name="remote_dir",
        kind="str",
        required=True,
        doc="the AI Hub path of `watch` (a connected drive that syncs it)",
        check=_check_remote_dir,
    ),
    KeySpec(
        name="deployment_id",
        kind="str",
        required=True,
        doc="AI Hub deployment that runs each drop",
        check=_check_deployment_id,
    ),
    KeySpec(
        name="output_dir",
        kind="template",
        nullable=True,
        doc="AI Hub folder for results (template); unset: the deployment's own output",
        check=_check_output_dir,
    ),
    KeySpec(
        name="version",
        kind="str",
        nullable=True,
        doc="app version to run (unset: the latest production version)",
        check=_empty_is_none,
    ),
    KeySpec(
        name="settings",
        kind="settings",
        default={},
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
        check=_check_ready_marker,
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
        check=_check_batch_name,
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
        check=_check_on_complete,
    ),
    KeySpec(
        name="on_failure",
        kind="action",
        default="keep",
        choices=("keep",),
        doc="after a run fails or is rejected: keep | move:<absolute dir>",
        check=_check_on_failure,
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

# settings.<key> -> doc (shape is checked in _Parser.settings and described in _settings_schema)
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

_HUB_BY_NAME: Final = {s.name: s for s in HUB_KEYS}
_RULE_BY_NAME: Final = {s.name: s for s in RULE_KEYS}
_TOP_BY_NAME: Final = {s.name: s for s in TOP_KEYS}
_DEFAULTS_BY_NAME: Final = {s.name: s for s in RULE_KEYS if s.name != "name"}

_RULE_HINT: Final = "it is a rule setting: put it under a rule or under defaults:"

_KIND_NOUN: Final[Mapping[str, str]] = {
    "str": "a string",
    "path": "a path (string)",
    "template": "a template string",
    "choice": "a string",
    "action": "a string",
    "int": "an integer",
    "number": "a number",
    "globs": "a list of glob patterns",
    "settings": "a mapping",
    "section": "a mapping",
}


# --- the dataclasses -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HubConfig:
    """How to reach AI Hub. Records where the token comes from, never the token."""

    base_url: str
    context: str | None = None
    token_env: str = "AIHUB_TOKEN"  # noqa: S105 - a variable name, not a secret
    token_file: Path | None = None
    max_concurrency: int = 4
    max_rps: float | None = None
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    ca_bundle: Path | None = None

    def _source(self, env: Mapping[str, str] | None) -> tuple[Literal["cred", "file", "env"], str]:
        env = os.environ if env is None else env
        cred_dir = env.get("CREDENTIALS_DIRECTORY")
        if cred_dir:
            cred = Path(cred_dir) / CREDENTIAL_NAME
            if cred.is_file():
                return "cred", str(cred)
        if self.token_file is not None:
            return "file", str(self.token_file)
        return "env", self.token_env

    def token_source(self, env: Mapping[str, str] | None = None) -> str:
        """Where `read_token()` would read the token, e.g. "env AIHUB_TOKEN" or "file /etc/x"."""
        kind, where = self._source(env)
        return {"cred": "systemd credential ", "file": "file ", "env": "env "}[kind] + where

    def read_token(self, env: Mapping[str, str] | None = None) -> str:
        """Read the API token: systemd credential `aihub-token`, else token_file, else token_env.

        Raises:
            TokenError: the source is missing, unreadable or empty (never holds the token).
        """
        kind, where = self._source(env)
        hint = (
            f"put the token in the environment variable {self.token_env} (hub.token_env),"
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
            raise TokenError(
                f"the API token from {source} contains whitespace or control characters"
            )
        return token


def _frozen_settings(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(value)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One watched folder routed to one deployment.

    `settings` is a read-only `MappingProxyType` over a private deep copy (nested values are plain
    JSON types); use `settings_dict()` for a mutable, JSON-ready copy. It is left out of the hash.
    """

    name: str
    watch: Path
    remote_dir: str
    deployment_id: str
    output_dir: str | None = None
    version: str | None = None
    settings: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, repr=False
    )
    drop: Literal["folder", "files"] = "folder"
    settle_seconds: float = 5.0
    ready_marker: str | None = None
    ignore: tuple[str, ...] = ()
    observer: Literal["inotify", "polling"] = "inotify"
    poll_interval_seconds: float = 5.0
    rescan_seconds: float = 300.0
    max_files: int = 100
    batch_name: str = "{date:%Y%m%d-%H%M%S}-{seq}"
    on_change: Literal["ignore", "resubmit"] = "ignore"
    on_complete: str = "keep"
    on_failure: str = "keep"
    max_attempts: int = 10

    def __post_init__(self) -> None:
        # Callers (tests, reload) may pass a plain dict: never keep a reference they can mutate.
        object.__setattr__(self, "settings", _frozen_settings(self.settings))

    def settings_dict(self) -> dict[str, Any]:
        """A deep, mutable copy of `settings` (plain dicts/lists), ready for a JSON request body."""
        return copy.deepcopy(dict(self.settings))


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A validated config. A reload builds a new one; nothing mutates it."""

    path: Path
    hub: HubConfig
    state_dir: Path
    log_level: str = "info"
    shutdown_timeout_seconds: float = 10.0
    rules: tuple[Rule, ...]
    warnings: tuple[ConfigIssue, ...] = ()

    def rule(self, name: str) -> Rule | None:
        """The rule called `name`, or None."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        return None


# --- the parser ------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _token_key(parent_path: str, name: str) -> bool:
    # Names under settings.keys.custom/secret are the deployment's own key names (a secret's value
    # is a vault *name*), not where our API token goes, so they are allowed.
    normalized = name.strip().lower().replace("-", "_")
    return normalized in TOKEN_KEYS and not _TOKEN_EXEMPT_PARENT_RE.search(parent_path)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return "a date"
    return type(value).__name__


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid keys: " + ", ".join(valid)


def _json_problem(value: object) -> str | None:
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "is not a finite number"
    if isinstance(value, list):
        for item in value:
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for item in value.values():
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    return f"holds {_describe(value)}, which JSON cannot carry (quote it)"


@dataclass(slots=True)
class _Draft:
    """A rule (or the defaults) being validated: values and where each came from."""

    index: int
    node: yaml.Node
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, tuple[yaml.Node, str]] = field(default_factory=dict)


class _Parser:
    """Walks the composed node tree once, recording every issue."""

    def __init__(self, *, file: str, env: Mapping[str, str], base_dir: Path) -> None:
        self.file = file
        self.env = env
        self.base_dir = base_dir
        self.issues: list[ConfigIssue] = []
        self.loader: yaml.SafeLoader | None = None
        self._scanned: set[int] = set()

    # -- reporting --

    def issue(
        self, node: yaml.Node | None, path: str, message: str, severity: Severity = "error"
    ) -> None:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.issues.append(
            ConfigIssue(
                file=self.file,
                line=line,
                col=col,
                key_path=path or "(root)",
                message=message,
                severity=severity,
            )
        )

    def at_line(self, where: tuple[int, int] | None, path: str, message: str) -> None:
        """An issue at a 0-based (line, column), or at 1:1 when the position is unknown."""
        line, col = (where[0] + 1, where[1] + 1) if where else (1, 1)
        self.issues.append(
            ConfigIssue(file=self.file, line=line, col=col, key_path=path, message=message)
        )

    # -- whole-tree pre-scan: duplicate keys, non-string keys, literal tokens --

    def scan_tree(self, node: yaml.Node, path: str) -> None:
        if id(node) in self._scanned:
            return  # an alias: already scanned where the anchor is
        self._scanned.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.scan_tree(item, f"{path}[{i}]")
        elif isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG:
                    self.scan_tree(value, path)
                    continue
                if not isinstance(key, yaml.ScalarNode):
                    self.issue(key, path, "keys must be plain strings")
                    continue
                name = str(key.value)
                child = _join(path, name)
                if name in seen:
                    first = seen[name].start_mark.line + 1
                    self.issue(
                        key, child, f"duplicate key {name!r} (first defined on line {first})"
                    )
                else:
                    seen[name] = key
                if _token_key(path, name):
                    # Never quote the value: it is a secret.
                    self.issue(
                        key,
                        child,
                        "a literal API token does not belong in the config file; put it in the"
                        " environment variable named by hub.token_env (default AIHUB_TOKEN),"
                        " in a file named by hub.token_file, or in the systemd credential"
                        f" {CREDENTIAL_NAME!r}",
                    )
                    continue
                self.scan_tree(value, child)

    # -- node access --

    def entries(self, node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """name -> (key node, value node); first wins (duplicates were reported by scan_tree)."""
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(self.entries(source, path).values())
                    else:
                        self.issue(key, path, "'<<' merges must name mappings")
                continue
            if not isinstance(key, yaml.ScalarNode):
                continue
            name = str(key.value)
            if name in out or _token_key(path, name):
                continue
            out[name] = (key, value)
        for key, value in merged:  # explicit keys win over merged ones, as in YAML
            out.setdefault(str(key.value), (key, value))
        return out

    def scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        assert self.loader is not None
        tag, value = node.tag, str(node.value)
        if tag == _STR_TAG:
            expanded, errors = expand_env(value, self.env)
            for message in errors:
                self.issue(node, path, message)
            if errors:
                return _INVALID
            if expanded != value and node.style is None:
                # A plain `${N:-4}` means the number 4 once expanded; a quoted one stays a string.
                tag = self.loader.resolve(  # type: ignore[no-untyped-call]
                    yaml.ScalarNode, expanded, (True, False)
                )
            value = expanded
            if tag == _STR_TAG:
                return value
        try:
            return self.loader.construct_object(
                yaml.ScalarNode(tag, value, node.start_mark, node.end_mark, node.style), deep=True
            )
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.issue(node, path, f"cannot read this value: {problem}")
            return _INVALID

    def plain(self, node: yaml.Node, path: str) -> Any:
        """The node as plain Python (strings expanded), or _INVALID after recording why."""
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = [self.plain(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
            return _INVALID if any(item is _INVALID for item in items) else items
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            bad = False
            for name, (_key, value) in self.entries(node, path).items():
                out[name] = self.plain(value, _join(path, name))
                bad = bad or out[name] is _INVALID
            return _INVALID if bad else out
        return _INVALID  # pragma: no cover - compose only yields the three node kinds

    # -- typed values --

    def convert(self, spec: KeySpec, key: yaml.Node, node: yaml.Node, path: str) -> Any:
        """One key's value, type- and range-checked, normalised; _INVALID when it is not usable."""
        if spec.kind == "settings":
            return self.settings(key, node, path)
        raw = self.plain(node, path)
        if raw is _INVALID:
            return _INVALID
        at = _At(self, key, path)
        noun = _KIND_NOUN[spec.kind]
        if raw is None:
            if spec.kind == "globs":
                return ()
            if spec.nullable:
                return spec.check(None, at) if spec.check else None
            hint = "" if spec.required else f"; leave the key out for the default {spec.default!r}"
            return at.error(f"expected {noun}, got nothing{hint}")
        value: Any
        if spec.kind in ("str", "path", "choice", "action", "template"):
            if spec.kind == "choice" and not isinstance(raw, str):
                return at.error(f"must be one of: {', '.join(spec.choices)} (got {_describe(raw)})")
            if not isinstance(raw, str):
                quote = ""
                if isinstance(node, yaml.ScalarNode) and not isinstance(raw, list | dict):
                    quote = f' (quote it: "{node.value}")'
                return at.error(f"expected {noun}, got {_describe(raw)}{quote}")
            value = raw
            if spec.kind == "path":
                if not raw.strip():
                    # `token_file: ${TOKEN_FILE:-}` means "not set"; a required path can't be empty.
                    return None if spec.nullable else at.error("must not be empty")
                value = Path(raw)
                if spec.relative_to_config and not value.is_absolute():
                    value = self.base_dir / value
            elif spec.kind == "choice" and raw not in spec.choices:
                close = difflib.get_close_matches(raw, spec.choices, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                return at.error(
                    f"must be one of: {', '.join(spec.choices)} (got {_short(raw)}){hint}"
                )
        elif spec.kind in ("int", "number"):
            ok = isinstance(raw, int | float) and not isinstance(raw, bool)
            if spec.kind == "int":
                ok = isinstance(raw, int) and not isinstance(raw, bool)
            if not ok:
                return at.error(f"expected {noun}, got {_describe(raw)} ({_short(raw)})")
            if isinstance(raw, float) and not math.isfinite(raw):
                return at.error(f"expected a finite number, got {raw}")
            value = raw if spec.kind == "int" else float(raw)
            problem = self.range_problem(spec, raw)
            if problem:
                return at.error(problem)
        elif spec.kind == "globs":
            return self.globs(key, node, raw, path)
        else:  # pragma: no cover - sections are walked by their own methods
            raise AssertionError(spec.kind)
        return spec.check(value, at) if spec.check else value

    @staticmethod
    def range_problem(spec: KeySpec, value: float) -> str | None:
        unit = " seconds" if spec.name.endswith("_seconds") else ""
        lo, hi, gt = spec.minimum, spec.maximum, spec.exclusive_minimum
        if gt is not None and value <= gt:
            tail = f" and at most {hi:g}{unit}" if hi is not None else ""
            return f"must be greater than {gt:g}{tail} (got {value:g})"
        if lo is not None and hi is not None and not lo <= value <= hi:
            return f"must be between {lo:g} and {hi:g}{unit} (got {value:g})"
        if hi is not None and value > hi:
            return f"must be at most {hi:g}{unit} (got {value:g})"
        if lo is not None and value < lo:
            return f"must be at least {lo:g}{unit} (got {value:g})"
        return None

    def globs(self, key: yaml.Node, node: yaml.Node, raw: Any, path: str) -> Any:
        if not isinstance(raw, list):
            return _At(self, key, path).error(
                f'expected a list of glob patterns, got {_describe(raw)} (write ["*.tmp"])'
            )
        items = node.value if isinstance(node, yaml.SequenceNode) else []
        bad = False
        for i, (pattern, item) in enumerate(zip(raw, items, strict=True)):
            where = f"{path}[{i}]"
            if not isinstance(pattern, str):
                self.issue(item, where, f"expected a glob pattern string, got {_describe(pattern)}")
                bad = True
                continue
            problem = _glob_problem(pattern)
            if problem:
                self.issue(item, where, problem)
                bad = True
        return _INVALID if bad else tuple(raw)

    def settings(self, key: yaml.Node, node: yaml.Node, path: str) -> Any:
        at = _At(self, key, path)
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return {}
        if not isinstance(node, yaml.MappingNode):
            return at.error("expected a mapping with keys, runtime_config and/or tags")
        out: dict[str, Any] = {}
        bad = False
        for name, (k, v) in self.entries(node, path).items():
            where = _join(path, name)
            if name not in SETTINGS_KEYS:
                self.issue(
                    k, where, f"unknown settings key {name!r}; {_suggest(name, [*SETTINGS_KEYS])}"
                )
                bad = True
                continue
            value = self.plain(v, where)
            if value is _INVALID:
                bad = True
                continue
            problem = _json_problem(value)
            if problem:
                self.issue(k, where, problem)
                bad = True
                continue
            if not self.settings_value(name, k, v, value, where):
                bad = True
                continue
            out[name] = value
        return _INVALID if bad else out

    def settings_value(
        self, name: str, key: yaml.Node, node: yaml.Node, value: Any, path: str
    ) -> bool:
        at = _At(self, key, path)
        if name == "tags":
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                at.error("expected a list of strings")
                return False
            total = sum(len(t) for t in value)
            budget = TAGS_MAX_TOTAL - TAGS_DAEMON_RESERVE
            if total > budget:
                at.error(
                    f"tags total {total} characters; the API allows {TAGS_MAX_TOTAL} in all and the"
                    f" daemon adds one tag of its own (up to {TAGS_DAEMON_RESERVE}), so a rule's"
                    f" tags may total at most {budget}"
                )
                return False
            return True
        if not isinstance(value, dict):
            at.error(f"expected a mapping, got {_describe(value)}")
            return False
        if name == "keys" and isinstance(node, yaml.MappingNode):
            ok = True
            for sub, (k, _v) in self.entries(node, path).items():
                where = _join(path, sub)
                if sub not in SETTINGS_KEYS_KEYS:
                    self.issue(
                        k,
                        where,
                        f"unknown settings key {sub!r}; {_suggest(sub, [*SETTINGS_KEYS_KEYS])}",
                    )
                    ok = False
                elif not isinstance(value[sub], dict):
                    self.issue(k, where, f"expected a mapping, got {_describe(value[sub])}")
                    ok = False
                elif sub == "secret" and not all(isinstance(s, str) for s in value[sub].values()):
                    self.issue(k, where, "secret values must be strings (names of vault secrets)")
                    ok = False
            return ok
        return True

    def unknown(
        self,
        entries: Mapping[str, tuple[yaml.Node, yaml.Node]],
        valid: Mapping[str, KeySpec],
        path: str,
        hints: Mapping[str, str],
    ) -> None:
        names = list(valid)
        for name, (key, _value) in entries.items():
            if name in valid:
                continue
            where = _join(path, name)
            if name in hints:
                self.issue(key, where, f"unknown key {name!r}: {hints[name]}")
            else:
                self.issue(key, where, f"unknown key {name!r}; {_suggest(name, names)}")

    def section(
        self,
        node: yaml.MappingNode,
        specs: Mapping[str, KeySpec],
        path: str,
        *,
        hints: Mapping[str, str],
        draft: _Draft,
        inherited: _Draft | None = None,
        require: bool = True,
    ) -> _Draft:
        entries = self.entries(node, path)
        self.unknown(entries, specs, path, hints)
        for name, spec in specs.items():
            where = _join(path, name)
            if name in entries:
                key, value = entries[name]
                draft.values[name] = self.convert(spec, key, value, where)
                draft.where[name] = (key, where)
            elif inherited is not None and name in inherited.values:
                draft.values[name] = inherited.values[name]
                draft.where[name] = inherited.where[name]
            elif spec.required and require:
                self.issue(node, where, f"missing required key {name!r}")
                draft.values[name] = _INVALID
            elif require:
                draft.values[name] = spec.default
        return draft

    # -- the document --

    def document(self, root: yaml.MappingNode, path: Path) -> Config | None:
        entries = self.entries(root, "")
        hub_names = ", ".join(_HUB_BY_NAME)
        top_hints = {n: "it belongs under hub:" for n in _HUB_BY_NAME} | {
            n: _RULE_HINT for n in _RULE_BY_NAME
        }
        self.unknown(entries, _TOP_BY_NAME, "", top_hints)

        hub = self.hub(entries.get("hub"), root, hub_names)
        top = _Draft(index=-1, node=root)
        for name in ("state_dir", "log_level", "shutdown_timeout_seconds"):
            if name in entries:
                key, value = entries[name]
                top.values[name] = self.convert(_TOP_BY_NAME[name], key, value, name)
                top.where[name] = (key, name)
        state_dir = self.state_dir(top)

        defaults = _Draft(index=-1, node=root)
        if "defaults" in entries:
            key, node = entries["defaults"]
            if isinstance(node, yaml.MappingNode):
                hints = {n: "it is a hub setting: put it under hub:" for n in _HUB_BY_NAME} | {
                    "name": "defaults cannot set 'name'; every rule needs its own"
                }
                self.section(
                    node, _DEFAULTS_BY_NAME, "defaults", hints=hints, draft=defaults, require=False
                )
            elif not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
                self.issue(key, "defaults", "expected a mapping of rule keys")

        drafts = self.rules(entries.get("rules"), root, defaults)
        self.cross_check(drafts, top, state_dir)

        if any(i.severity == "error" for i in self.issues) or hub is None or state_dir is None:
            return None
        rules = tuple(self.build_rule(d) for d in drafts)
        return Config(
            path=path,
            hub=hub,
            state_dir=state_dir,
            log_level=top.values.get("log_level", _TOP_BY_NAME["log_level"].default),
            shutdown_timeout_seconds=top.values.get(
                "shutdown_timeout_seconds", _TOP_BY_NAME["shutdown_timeout_seconds"].default
            ),
            rules=rules,
            warnings=tuple(self.sorted_issues()),
        )

    def hub(
        self, entry: tuple[yaml.Node, yaml.Node] | None, root: yaml.Node, hub_names: str
    ) -> HubConfig | None:
        if entry is None:
            self.issue(root, "hub", "missing required key 'hub' (at least hub.base_url)")
            return None
        key, node = entry
        if not isinstance(node, yaml.MappingNode):
            self.issue(key, "hub", f"expected a mapping with {hub_names}")
            return None
        hints = {n: _RULE_HINT for n in _RULE_BY_NAME}
        draft = self.section(
            node, _HUB_BY_NAME, "hub", hints=hints, draft=_Draft(index=-1, node=node)
        )
        values = draft.values
        if any(v is _INVALID for v in values.values()):
            return None
        return HubConfig(**values)

    def state_dir(self, top: _Draft) -> Path | None:
        if "state_dir" in top.values:
            value = top.values["state_dir"]
            if value is _INVALID:
                return None
            assert isinstance(value, Path)
            return value
        # systemd's StateDirectory= sets $STATE_DIRECTORY (a ':'-separated list; ours is first).
        from_env = self.env.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(from_env) if from_env else Path(DEFAULT_STATE_DIR)

    def rules(
        self, entry: tuple[yaml.Node, yaml.Node] | None, root: yaml.Node, defaults: _Draft
    ) -> list[_Draft]:
        if entry is None:
            self.issue(
                root, "rules", "missing required key 'rules' (a list with at least one rule)"
            )
            return []
        key, node = entry
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            self.issue(key, "rules", "the rules list is empty; add at least one rule")
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.issue(key, "rules", "expected a list of rules (each item starts with '- name:')")
            return []
        if not node.value:
            self.issue(key, "rules", "the rules list is empty; add at least one rule")
            return []
        hints = {n: "it is a hub setting: put it under hub:" for n in _HUB_BY_NAME} | {
            n: "it is a top-level setting"
            for n in ("state_dir", "log_level", "shutdown_timeout_seconds")
        }
        drafts: list[_Draft] = []
        for i, item in enumerate(node.value):
            path = f"rules[{i}]"
            if not isinstance(item, yaml.MappingNode):
                self.issue(item, path, "each rule must be a mapping (name, watch, remote_dir, ...)")
                continue
            draft = _Draft(index=i, node=item)
            self.section(item, _RULE_BY_NAME, path, hints=hints, draft=draft, inherited=defaults)
            drafts.append(draft)
        return drafts

    def cross_check(self, drafts: list[_Draft], top: _Draft, state_dir: Path | None) -> None:
        names: dict[str, _Draft] = {}
        watched: list[tuple[_Draft, Path]] = []
        for d in drafts:
            name = d.values.get("name")
            if isinstance(name, str):
                if name in names:
                    first = names[name]
                    key, where = d.where["name"]
                    line = first.where["name"][0].start_mark.line + 1
                    self.issue(
                        key,
                        where,
                        f"duplicate rule name {name!r} (first used by rules[{first.index}]"
                        f" on line {line})",
                    )
                else:
                    names[name] = d
            watch = d.values.get("watch")
            if not isinstance(watch, Path):
                continue
            real = Path(os.path.realpath(watch))
            key, where = d.where["watch"]
            for other, other_real in watched:
                label = f"rules[{other.index}].watch ({other.values['watch']})"
                if real == other_real:
                    self.issue(key, where, f"is the same folder as {label}; one rule per folder")
                elif real.is_relative_to(other_real):
                    self.issue(key, where, f"is inside {label}; watched folders must not nest")
                elif other_real.is_relative_to(real):
                    self.issue(key, where, f"contains {label}; watched folders must not nest")
            watched.append((d, real))

        if state_dir is not None:
            real_state = Path(os.path.realpath(state_dir))
            for d, real in watched:
                if real_state.is_relative_to(real):
                    label = f"rules[{d.index}].watch ({d.values['watch']})"
                    if "state_dir" in top.where:
                        key, where = top.where["state_dir"]
                        self.issue(key, where, f"{state_dir} is inside the watched folder {label}")
                    else:
                        key, where = d.where["watch"]
                        self.issue(
                            key,
                            where,
                            f"contains the state directory {state_dir} (state_dir unset: from"
                            " $STATE_DIRECTORY or the default); set state_dir outside it",
                        )

        for d in drafts:
            for action in ("on_complete", "on_failure"):
                value = d.values.get(action)
                if not (isinstance(value, str) and value.startswith("move:")):
                    continue
                target = Path(os.path.realpath(value[len("move:") :]))
                for w, real in watched:
                    if target.is_relative_to(real):
                        key, where = d.where[action]
                        self.issue(
                            key,
                            where,
                            f"move target is inside rules[{w.index}].watch ({w.values['watch']});"
                            " moved drops would be detected again",
                        )
                        break

    @staticmethod
    def build_rule(d: _Draft) -> Rule:
        return Rule(**d.values)

    def sorted_issues(self) -> list[ConfigIssue]:
        unique = list(dict.fromkeys(self.issues))
        return sorted(unique, key=lambda i: (i.line, i.col))


def parse_config(text: str, *, path: Path, env: Mapping[str, str]) -> Config:
    """Validate config text in one pass; `path` names it in issues and anchors relative paths.

    Raises:
        ConfigError: any error (`.issues` holds every error and warning, sorted by line).
    """
    parser = _Parser(file=str(path), env=env, base_dir=Path(os.path.abspath(path)).parent)
    loader: yaml.SafeLoader | None = None
    try:
        try:
            # The reader rejects control characters in the constructor, so it is inside the try.
            loader = parser.loader = yaml.SafeLoader(text)
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            where = (mark.line, mark.column) if mark else None
            parser.at_line(where, "yaml", f"YAML syntax error: {problem}")
            raise ConfigError(parser.sorted_issues()) from None
        except yaml.YAMLError as exc:
            # ReaderError (a control character) knows only its offset into the text.
            offset = getattr(exc, "position", None)
            where = None
            if isinstance(offset, int):
                where = (text.count("\n", 0, offset), offset - (text.rfind("\n", 0, offset) + 1))
            parser.at_line(where, "yaml", f"YAML syntax error: {exc}")
            raise ConfigError(parser.sorted_issues()) from None
        if root is None:
            parser.issue(None, "(root)", "the file is empty; it needs at least hub: and rules:")
            raise ConfigError(parser.sorted_issues())
        if not isinstance(root, yaml.MappingNode):
            parser.issue(root, "(root)", "the top level must be a mapping (hub:, rules:, ...)")
            raise ConfigError(parser.sorted_issues())
        parser.scan_tree(root, "")
        config = parser.document(root, path)
    finally:
        if loader is not None:
            loader.dispose()
    if config is None:
        raise ConfigError(parser.sorted_issues())
    return config


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path` (`env` defaults to the process environment).

    Raises:
        ConfigError: the file cannot be read, or has errors (all of them, with FILE:LINE:COL).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        issue = ConfigIssue(
            file=str(path), line=1, col=1, key_path="(file)", message=f"cannot read: {reason}"
        )
        raise ConfigError([issue]) from None
    return parse_config(text, path=path, env=os.environ if env is None else env)


# --- JSON Schema ---------------------------------------------------------------------------

_ENV_REF_SCHEMA: Final = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
    "description": "a ${VAR} or ${VAR:-default} reference, expanded when the config loads",
}


def _json_default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _spec_schema(spec: KeySpec) -> dict[str, Any]:
    inner: dict[str, Any]
    if spec.kind in ("str", "path", "template"):
        inner = {"type": "string"}
    elif spec.kind in ("int", "number"):
        inner = {"type": "integer" if spec.kind == "int" else "number"}
        if spec.minimum is not None:
            inner["minimum"] = spec.minimum
        if spec.maximum is not None:
            inner["maximum"] = spec.maximum
        if spec.exclusive_minimum is not None:
            inner["exclusiveMinimum"] = spec.exclusive_minimum
    elif spec.kind == "choice":
        inner = {"enum": list(spec.choices)}
    elif spec.kind == "action":
        inner = {"anyOf": [{"enum": list(spec.choices)}, {"type": "string", "pattern": "^move:/"}]}
    elif spec.kind == "globs":
        inner = {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}}
    elif spec.kind == "settings":
        inner = {"$ref": "#/$defs/settings"}
    else:  # pragma: no cover - sections are built by json_schema()
        raise AssertionError(spec.kind)
    options: list[dict[str, Any]] = [inner]
    if spec.kind not in ("str", "path", "template", "settings"):
        options.append({"$ref": "#/$defs/env_ref"})  # a plain `${N:-4}` expands to a number
    if spec.nullable:
        options.append({"type": "null"})
    out: dict[str, Any] = {"description": spec.doc}
    out |= options[0] if len(options) == 1 else {"anyOf": options}
    if not spec.required and spec.default is not None:
        out["default"] = _json_default(spec.default)
    return out


def _object_schema(
    specs: Mapping[str, KeySpec], doc: str, *, required: tuple[str, ...] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "description": doc,
        "additionalProperties": False,
        "properties": {name: _spec_schema(spec) for name, spec in specs.items()},
    }
    names = [s.name for s in specs.values() if s.required] if required is None else required
    if names:
        out["required"] = list(names)
    return out


def _inheritable_required() -> list[dict[str, Any]]:
    """Each required rule key that `defaults` can supply is required in a rule only without it."""
    return [
        {
            "if": {
                "not": {
                    "required": ["defaults"],
                    "properties": {"defaults": {"type": "object", "required": [name]}},
                }
            },
            "then": {"properties": {"rules": {"items": {"required": [name]}}}},
        }
        for name, spec in _DEFAULTS_BY_NAME.items()
        if spec.required
    ]


def _settings_schema() -> dict[str, Any]:
    shapes: dict[str, dict[str, Any]] = {
        "keys": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "custom": {"type": "object", "description": SETTINGS_KEYS_KEYS["custom"]},
                "secret": {
                    "type": "object",
                    "description": SETTINGS_KEYS_KEYS["secret"],
                    "additionalProperties": {"type": "string"},
                },
            },
        },
        "runtime_config": {"type": "object"},
        "tags": {"type": "array", "items": {"type": "string"}},
    }
    return {
        "type": ["object", "null"],
        "description": _RULE_BY_NAME["settings"].doc,
        "additionalProperties": False,
        "properties": {
            name: {"description": doc, **shapes[name]} for name, doc in SETTINGS_KEYS.items()
        },
    }


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the config file, built from the same key tables."""
    top = _TOP_BY_NAME
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "aihub-watcher config",
        "type": "object",
        "additionalProperties": False,
        "required": [s.name for s in TOP_KEYS if s.required],
        "allOf": _inheritable_required(),
        "properties": {
            "hub": _object_schema(_HUB_BY_NAME, top["hub"].doc),
            "state_dir": _spec_schema(top["state_dir"]),
            "log_level": _spec_schema(top["log_level"]),
            "shutdown_timeout_seconds": _spec_schema(top["shutdown_timeout_seconds"]),
            "defaults": {
                "anyOf": [{"$ref": "#/$defs/defaults"}, {"type": "null"}],
                "description": top["defaults"].doc,
            },
            "rules": {
                "type": "array",
                "description": top["rules"].doc,
                "minItems": 1,
                "items": {"$ref": "#/$defs/rule"},
            },
        },
        "$defs": {
            "rule": _object_schema(_RULE_BY_NAME, "one watched folder", required=("name",)),
            "defaults": _object_schema(_DEFAULTS_BY_NAME, top["defaults"].doc, required=()),
            "settings": _settings_schema(),
            "env_ref": dict(_ENV_REF_SCHEMA),
        },
    }


# --- reload diff and the `check` table -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDiff:
    """What a reload changes, by rule name (for the `config.reloaded` log line)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    hub_changed: bool = False
    top_level_changed: tuple[str, ...] = ()  # state_dir, log_level, shutdown_timeout_seconds

    @property
    def empty(self) -> bool:
        """True when the new config changes nothing."""
        return not (
            self.added or self.removed or self.changed or self.hub_changed or self.top_level_changed
        )

    def log_fields(self) -> dict[str, Any]:
        """Structured log fields (lists, JSON-friendly)."""
        return {
            "rules_added": list(self.added),
            "rules_removed": list(self.removed),
            "rules_changed": list(self.changed),
            "hub_changed": self.hub_changed,
            "top_level_changed": list(self.top_level_changed),
        }


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """Compare two configs by rule name (rule order alone is not a change)."""
    old_rules = {r.name: r for r in old.rules}
    new_rules = {r.name: r for r in new.rules}
    return ConfigDiff(
        added=tuple(n for n in new_rules if n not in old_rules),
        removed=tuple(n for n in old_rules if n not in new_rules),
        changed=tuple(n for n, r in new_rules.items() if n in old_rules and old_rules[n] != r),
        hub_changed=old.hub != new.hub,
        top_level_changed=tuple(
            name
            for name in ("state_dir", "log_level", "shutdown_timeout_seconds")
            if getattr(old, name) != getattr(new, name)
        ),
    )


def summary_table(config: Config) -> str:
    """rule | watch | remote_dir | deployment | drop | settle, as aligned text columns."""
    header = ("rule", "watch", "remote_dir", "deployment", "drop", "settle")
    rows = [
        (
            r.name,
            str(r.watch),
            r.remote_dir,
            r.deployment_id,
            r.drop,
            f"{r.settle_seconds:g}s",
        )
        for r in config.rules
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule_line = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule_line, *(line(r) for r in rows)])
