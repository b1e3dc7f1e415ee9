"""Request checks against the spec's shapes: request bodies (runs, batches, multipart
sessions), query parameters (listRuns, results, listings) and path segments.

Each failure is a BadRequest that becomes a JSON error response. Imports no watcher module
outside sim/.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from watcher.sim.results import FLAGS, ResultsQuery
from watcher.sim.runs import NS_PER_S, RunQuery

MAX_TAGS_CHARS: Final = 500
MAX_NAME_CHARS: Final = 255  # a batch name, a file name
_DAY_S: Final = 24 * 60 * 60


class BadRequest(Exception):
    """A client error detected while validating a request; becomes a JSON error response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_segment(raw: str) -> str:
    """Percent-decode a path (segment). Raises BadRequest for invalid UTF-8."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest(400, "path is not valid percent-encoded UTF-8") from exc


def int_segment(raw: str, name: str) -> int:
    """A path segment holding a non-negative integer (at most 18 digits). Raises BadRequest."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadRequest(400, f"{name} must be an integer")
    return int(raw)


def filename_segment(raw: str) -> str:
    """A batch file name from its (percent-encoded) path segment. Raises BadRequest."""
    return _filename(decode_segment(raw))


def _filename(name: str) -> str:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise BadRequest(400, f"invalid file name {name!r}: one path segment, no '/'")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(400, f"file name is over {MAX_NAME_CHARS} characters")
    return name


# --------------------------------------------------------------------- listRuns parameters
def run_query(query: dict[str, list[str]]) -> RunQuery:
    """The listRuns query string as a RunQuery. Raises BadRequest for malformed parameters."""
    statuses = frozenset(
        s.strip() for value in query.get("status", ()) for s in value.split(",") if s.strip()
    )
    from_s = _int_param(query, "from_timestamp")
    to_s = _int_param(query, "to_timestamp")
    limit = _int_param(query, "limit", minimum=0)
    offset = _int_param(query, "offset", minimum=0) or 0
    by_status = _choice_param(query, "sort_by", ("start_timestamp", "status")) == "status"
    ascending = _choice_param(query, "order", ("ASCENDING", "DESCENDING")) == "ASCENDING"
    return RunQuery(
        # Seconds compared at second granularity: a run started at 12.7 s matches to_timestamp=12.
        lo_ns=(math.floor(time.time()) - _DAY_S if from_s is None else from_s) * NS_PER_S,
        # No run starts in the future, so "up to now" (the spec default) means no upper bound.
        hi_ns=None if to_s is None else (to_s + 1) * NS_PER_S - 1,
        statuses=statuses,
        deployment_id=_str_param(query, "deployment_id"),
        run_id=_str_param(query, "run_id"),
        app_id=_str_param(query, "app_id"),
        limit=limit,
        offset=offset,
        sort_by="status" if by_status else "start_timestamp",
        descending=not ascending,
    )


def _last_param(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _str_param(query: dict[str, list[str]], name: str) -> str | None:
    value = _last_param(query, name)
    return value if value else None


def _int_param(query: dict[str, list[str]], name: str, *, minimum: int | None = None) -> int | None:
    value = _last_param(query, name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise BadRequest(400, f"query parameter {name} must be an integer") from exc
    if minimum is not None and number < minimum:
        raise BadRequest(400, f"query parameter {name} must be >= {minimum}")
    return number


def _choice_param(query: dict[str, list[str]], name: str, choices: tuple[str, ...]) -> str | None:
    value = _last_param(query, name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise BadRequest(400, f"query parameter {name} must be one of {', '.join(choices)}")
    return value


def results_query(query: dict[str, list[str]]) -> ResultsQuery:
    """The getRunResults query string. Raises BadRequest for malformed parameters."""
    flags = [_bool_param(query, name) for name in FLAGS]
    return ResultsQuery(
        file_offset=_int_param(query, "file_offset", minimum=0) or 0,
        review=flags[0],
        confidence=flags[1],
        validation=flags[2],
        source=flags[3],
    )


def page_params(query: dict[str, list[str]], size_name: str) -> tuple[int | None, int]:
    """(page size or None, offset) from `size_name` (>= 1) and `offset`. Raises BadRequest."""
    return _int_param(query, size_name, minimum=1), _int_param(query, "offset", minimum=0) or 0


def str_param(query: dict[str, list[str]], name: str) -> str | None:
    """The last non-empty value of `name`, or None."""
    return _str_param(query, name)


def _bool_param(query: dict[str, list[str]], name: str) -> bool:
    value = (_last_param(query, name) or "false").lower()
    if value not in ("true", "false"):
        raise BadRequest(400, f"query parameter {name} must be true or false")
    return value == "true"


# --------------------------------------------------------------------- request bodies
def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object. Raises BadRequest."""
    try:
        data = json.loads(body) if body else None
    except ValueError as exc:
        raise BadRequest(400, "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest(400, "request body must be a JSON object")
    return data


def batch_request(body: bytes) -> tuple[str, str | None]:
    """(name, workspace) from a createBatch body. Raises BadRequest."""
    data = json_object(body)
    _check_type(data, "name", str, "a string")
    _check_type(data, "workspace", str, "a string")
    name = data.get("name")
    if not name:
        raise BadRequest(400, "name is required")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(400, f"name is over {MAX_NAME_CHARS} characters")
    return name, data.get("workspace") or None


def multipart_request(body: bytes) -> tuple[int, str, int]:
    """(batch_id, filename, file_size) from a createMultipartUploadSession body."""
    data = json_object(body)
    for key in ("batch_id", "filename", "file_size"):
        if key not in data:
            raise BadRequest(400, f"{key} is required")
    _check_type(data, "batch_id", int, "an integer")
    _check_type(data, "filename", str, "a string")
    size = data["file_size"]  # "Can be an integer or a string."
    if isinstance(size, str) and size.isascii() and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest(400, "file_size must be a non-negative integer")
    return data["batch_id"], _filename(data["filename"]), size


def commit_request(body: bytes) -> tuple[str, list[tuple[int, str]]]:
    """(action, [(part_num, part_id)...]) from a commitMultipartUploadSession body."""
    data = json_object(body)
    action = data.get("action")
    if action not in ("commit", "abort"):
        raise BadRequest(400, "action must be commit or abort")
    if action == "abort":
        return action, []
    parts = data.get("parts")
    if not isinstance(parts, list):
        raise BadRequest(400, "parts is required to commit, an array")
    out = []
    for part in parts:
        if not isinstance(part, dict):
            raise BadRequest(400, "each of parts must be an object")
        _check_type(part, "part_num", int, "an integer")
        _check_type(part, "part_id", str, "a string")
        if "part_num" not in part or "part_id" not in part:
            raise BadRequest(400, "each of parts needs part_num and part_id")
        out.append((part["part_num"], part["part_id"]))
    return action, out


def run_request(body: bytes) -> dict[str, Any]:
    """Check a runDeployment body against the spec's request schema; the fields on success.

    Raises BadRequest naming the first problem.
    """
    data = json_object(body)
    _check_type(data, "batch_id", int, "an integer")
    _check_type(data, "input_dir", str, "a string")
    _check_type(data, "manual_upstream_integration", bool, "a boolean")
    _check_type(data, "from_timestamp", (int, float), "a number")
    _check_type(data, "to_timestamp", (int, float), "a number")
    _check_type(data, "version", str, "a string")
    _check_type(data, "output_dir", str, "a string")
    _check_type(data, "settings", dict, "an object")
    if (
        not data.get("input_dir")
        and "batch_id" not in data
        and data.get("manual_upstream_integration") is not True
    ):
        raise BadRequest(400, "one of input_dir or batch_id is required")
    settings = data.get("settings")
    if isinstance(settings, dict):
        _check_settings(settings)
    return data


def _check_settings(settings: dict[str, Any]) -> None:
    _check_type(settings, "keys", dict, "an object")
    _check_type(settings, "runtime_config", dict, "an object")
    _check_type(settings, "tags", list, "an array of strings")
    keys = settings.get("keys")
    if isinstance(keys, dict):
        _check_type(keys, "custom", dict, "an object")
        _check_type(keys, "secret", dict, "an object")
        secret = keys.get("secret")
        if isinstance(secret, dict) and not all(isinstance(v, str) for v in secret.values()):
            raise BadRequest(400, "settings.keys.secret values must be strings")
    tags = settings.get("tags")
    if isinstance(tags, list):
        if not all(isinstance(t, str) for t in tags):
            raise BadRequest(400, "settings.tags must be an array of strings")
        if sum(len(t) for t in tags) > MAX_TAGS_CHARS:
            raise BadRequest(
                400, f"combined length of settings.tags must not exceed {MAX_TAGS_CHARS} characters"
            )


def _check_type(
    obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], label: str
) -> None:
    if key not in obj:
        return
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python but not an integer in JSON Schema.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise BadRequest(400, f"{key} must be {label}")
