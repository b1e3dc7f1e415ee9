"""The semantic check of each config key (URL, paths, names, templates, globs, actions).

Core: imports only the stdlib, `yaml` and the template and env modules of this package.
A check gets the typed value and an `At`; it returns the normalised value or `INVALID`.
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from watcher.config.env import ENV_NAME_RE
from watcher.config.schedule import parse_schedule
from watcher.config.templates import (
    RESULTS_FIELDS,
    render_sample,
    rendered_name_problem,
    template_errors,
)
from watcher.errors import Severity
from watcher.names import is_in_progress

__all__ = [
    "INVALID",
    "RULE_NAME_MAX",
    "At",
    "Check",
    "Invalid",
    "Reporter",
    "check_action",
    "check_active_hours",
    "check_base_url",
    "check_batch_name",
    "check_ca_bundle",
    "check_context",
    "check_deployment_id",
    "check_name",
    "check_output_dir",
    "check_ready_marker",
    "check_remote_dir",
    "check_results_dir",
    "check_token_env",
    "check_tz",
    "check_watch",
    "check_workspace",
    "empty_is_none",
    "glob_problem",
]

RULE_NAME_MAX: Final = 64
_RULE_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_DEPLOYMENT_ID_RE: Final = re.compile(r"[^/\s?#%]+\Z")


class Invalid:
    """Marks a value that failed validation (its issue is already recorded)."""

    def __repr__(self) -> str:
        return "<invalid>"


INVALID: Final = Invalid()


class Reporter(Protocol):
    """Whatever records issues against YAML nodes (the parser's node reader)."""

    def issue(
        self, node: yaml.Node | None, path: str, message: str, severity: Severity = "error"
    ) -> None: ...


@dataclass(slots=True)
class At:
    """Where a value came from, so a check can report against the offending key."""

    ctx: Reporter
    node: yaml.Node
    path: str

    def error(self, message: str) -> Invalid:
        self.ctx.issue(self.node, self.path, message)
        return INVALID

    def warn(self, message: str) -> None:
        self.ctx.issue(self.node, self.path, message, severity="warning")


Check = Callable[[Any, At], Any]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(value: str, at: At) -> Any:
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


def check_context(value: str | None, at: At) -> Any:
    if value is None or value == "":
        return None  # lets `context: ${AIHUB_CONTEXT:-}` mean "no IB-Context header"
    if any(ch in value for ch in "\r\n\0"):
        return at.error("must be a single line (it is sent as the IB-Context header)")
    return value


def empty_is_none(value: str | None, _at: At) -> Any:
    return value or None  # `${VERSION:-}` means "not set"


def check_token_env(value: str, at: At) -> Any:
    if not ENV_NAME_RE.match(value):
        # The value is not echoed: people paste the token itself here.
        return at.error(
            "must be the name of an environment variable (like AIHUB_TOKEN), not the token itself"
        )
    return value


def check_ca_bundle(value: Path | None, at: At) -> Any:
    if value is not None and not value.is_file():
        return at.error(f"{value} does not exist or is not a file")
    return value


def check_name(value: str, at: At) -> Any:
    if not _RULE_NAME_RE.match(value) or len(value) > RULE_NAME_MAX:
        return at.error(
            f"rule names use letters, digits, '.', '_' and '-', start with a letter or digit"
            f" and have at most {RULE_NAME_MAX} characters (got {value!r})"
        )
    return value


def check_watch(value: Path, at: At) -> Any:
    if not value.is_absolute():
        return at.error(f"must be an absolute path (got {str(value)!r})")
    if not value.exists():
        at.warn(f"{value} does not exist yet; the daemon waits for it")
    elif not value.is_dir():
        return at.error(f"{value} is not a directory")
    return value


def check_remote_dir(value: str | None, at: At) -> Any:
    if value is None or not value.strip():
        return None  # `${REMOTE_DIR:-}` means "not set"; relations.py requires it for drive
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


def check_deployment_id(value: str, at: At) -> Any:
    if not _DEPLOYMENT_ID_RE.match(value) or value in (".", ".."):
        return at.error(
            "is not a valid deployment ID (copy it from the deployment's URL in AI Hub,"
            " e.g. 01902d6f-bb35-74cb-bd27-c09b38bbf20a)"
        )
    return value


def _path_segments_ok(rendered: str, at: At, *, what: str) -> bool:
    if rendered.startswith("/"):
        at.error(f"{what} is an AI Hub path: it starts with the organization or user, not '/'")
        return False
    if ".." in rendered.split("/"):
        at.error(f"{what} must not contain '..' segments")
        return False
    return True


def check_output_dir(value: str | None, at: At) -> Any:
    if not value:
        return None  # `${OUTPUT_DIR:-}` means "not set"
    errors = template_errors(value)
    for message in errors:
        at.error(message)
    if errors:
        return INVALID
    if not _path_segments_ok(render_sample(value), at, what="output_dir"):
        return INVALID
    return value


def check_batch_name(value: str, at: At) -> Any:
    errors = template_errors(value, allow_seq=True)
    for message in errors:
        at.error(message)
    if errors:
        return INVALID
    sample = render_sample(value)
    if not sample.strip() or "/" in sample or sample in (".", ".."):
        return at.error(
            f"must render to a single folder name, without '/' (renders like {sample!r})"
        )
    if is_in_progress(sample):
        return at.error(
            f"renders like {sample!r}, a name that looks still being written: "
            "the batch would never be submitted"
        )
    return value


def check_results_dir(value: str | None, at: At) -> Any:
    if not value:
        return None  # `${RESULTS_DIR:-}` means "not set"
    errors = template_errors(value, fields=RESULTS_FIELDS)
    for message in errors:
        at.error(message)
    if errors:
        return INVALID
    if not value.startswith("/"):
        return at.error(
            f"must be an absolute local path (starting with '/'), e.g. /srv/results/{{rule}}"
            f" (got {value!r})"
        )
    sample = render_sample(value)
    for segment in sample.split("/"):
        problem = rendered_name_problem(segment) if segment else None
        if problem:
            return at.error(f"renders like {sample!r}: {problem}")
    return value


def check_workspace(value: str | None, at: At) -> Any:
    if value is None or not value.strip():
        return None  # `workspace: ${AIHUB_WORKSPACE:-}` means "the personal workspace"
    if any(ch in value for ch in "\r\n\0"):
        return at.error("must be a single line (the name of an AI Hub workspace)")
    return value


def check_ready_marker(value: str | None, at: At) -> Any:
    if value is None:
        return None
    if not value or "/" in value or "\0" in value or value in (".", ".."):
        return at.error(
            "must be a non-empty file name suffix without '/' (e.g. '.ready': a sibling file"
            " <drop>.ready marks the drop ready)"
        )
    return value


def glob_problem(pattern: str) -> str | None:
    """What is wrong with one `ignore` pattern, or None."""
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


def check_action(value: str, at: At, *, choices: tuple[str, ...]) -> Any:
    """An `action` key: one of `choices` (its KeySpec's) or move:<absolute dir>."""
    if value in choices:
        return value
    if value.startswith("move:"):
        target = value[len("move:") :]
        if not target or not Path(target).is_absolute():
            return at.error(f"move:<dir> needs an absolute directory (got {value!r})")
        return value
    allowed = " | ".join((*choices, "move:<absolute dir>"))
    return at.error(f"must be {allowed} (got {value!r})")


def check_active_hours(value: str | None, at: At) -> Any:
    """The schedule (its zone is the rule's `tz`, bound by `Rule`)."""
    if value is None or not value.strip():
        return None  # `${ACTIVE_HOURS:-}` means "always"
    try:
        return parse_schedule(value)
    except ValueError as exc:
        return at.error(f"{exc} (got {value!r})")


def check_tz(value: str | None, at: At) -> Any:
    if value is None or not value.strip():
        return None  # `${TZ:-}` means the host's zone
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else " (an IANA name like Europe/Paris; a host without tzdata knows none:"
            " install the tzdata package)"
        )
        return at.error(f"unknown time zone {value!r}{hint}")
    return value
