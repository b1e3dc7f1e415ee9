"""The hub's request and result types: the runDeployment body, `Run`, `FileMetadata`, and the
batch types (`Batch`, `MultipartSession`, the batch and multipart request bodies).

Pure: no I/O. Imports only `watcher.hub.errors` and `watcher.hub.wire`; never config, ledger
or pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from watcher.hub.errors import HubResponseError
from watcher.hub.wire import as_int, json_type

__all__ = [
    "Batch",
    "FileMetadata",
    "MultipartSession",
    "Run",
    "build_batch_request",
    "build_commit_request",
    "build_multipart_request",
    "build_run_request",
]

# The spec's `run` properties, in its order: the known fields of Run (everything else is `extra`).
_RUN_FIELDS: Final = (
    "id",
    "status",
    "start_timestamp",
    "finish_timestamp",
    "msg",
    "batch_id",
    "input_dir",
    "app_id",
    "deployment_id",
    "tags",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One AI Hub run (the spec's `run` schema); unknown response fields are kept in `extra`."""

    id: str
    status: str  # RUNNING, COMPLETE, FAILED, CANCELLED, STOPPED_AT_CHECKPOINT, PAUSED, or newer
    start_timestamp: int | None = None  # Unix ns
    finish_timestamp: int | None = None  # Unix ns
    msg: str | None = None
    batch_id: int | None = None
    input_dir: str | None = None
    app_id: str | None = None
    deployment_id: str | None = None
    tags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def from_json(cls, data: object, *, method: str, path: str) -> Run:
        """Build a Run from a decoded response body.

        Raises:
            HubResponseError: the body is not a run (not an object, no id/status, wrong types).
        """

        def bad(why: str) -> HubResponseError:
            return HubResponseError(f"response is not a run: {why}", method=method, path=path)

        if not isinstance(data, Mapping):
            raise bad(f"expected a JSON object, got {json_type(data)}")
        values: dict[str, Any] = {}
        for name in ("id", "status"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise bad(f"'{name}' must be a non-empty string, got {json_type(value)}")
            values[name] = value
        for name in ("start_timestamp", "finish_timestamp", "batch_id"):
            raw = data.get(name)
            number = as_int(raw)
            if raw is not None and number is None:
                raise bad(f"'{name}' must be an integer, got {json_type(raw)}")
            values[name] = number
        for name in ("msg", "input_dir", "app_id", "deployment_id"):
            raw = data.get(name)
            if raw is not None and not isinstance(raw, str):
                raise bad(f"'{name}' must be a string, got {json_type(raw)}")
            values[name] = raw
        tags = data.get("tags")
        if tags is None:
            values["tags"] = ()
        elif isinstance(tags, list) and all(isinstance(t, str) for t in tags):
            values["tags"] = tuple(tags)
        else:
            raise bad("'tags' must be a list of strings")
        extra = {str(k): v for k, v in data.items() if k not in _RUN_FIELDS}
        return cls(**values, extra=MappingProxyType(extra))

    def log_fields(self) -> dict[str, Any]:
        """Known fields that are set, JSON-ready, for a log line or the ledger's last response."""
        out: dict[str, Any] = {}
        for name in _RUN_FIELDS:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FileMetadata:
    """What HEAD /v2/files/{path} says about a path in the AI Hub filesystem."""

    path: str
    is_folder: bool
    size: int | None  # bytes; files only
    last_modified: str | None  # as the server sent it; files only


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """An AI Hub batch: the spec's `batch` (createBatch: only `id`) or `batchInfo` (getBatch).

    `name` is the server's when it sends one, else the name the batch was created with;
    `workspace` likewise. Every other response field is kept in `extra` (mount_point, ...).
    """

    id: int
    name: str
    workspace: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def from_json(
        cls,
        data: object,
        *,
        method: str,
        path: str,
        name: str | None = None,
        workspace: str | None = None,
    ) -> Batch:
        """Build a Batch from a decoded response; `name`/`workspace` fill what it leaves out.

        Raises:
            HubResponseError: not an object, no integer id, no name, or a name/workspace that is
                not a string.
        """
        obj = _object(data, "batch", method, path)
        batch_id = as_int(obj.get("id"))
        if batch_id is None:
            why = f"'id' must be an integer, got {json_type(obj.get('id'))}"
            raise _bad("batch", why, method, path)
        values: dict[str, str | None] = {}
        for key, given in (("name", name), ("workspace", workspace)):
            raw = obj.get(key)
            if raw is not None and not isinstance(raw, str):
                why = f"'{key}' must be a string, got {json_type(raw)}"
                raise _bad("batch", why, method, path)
            values[key] = raw if raw is not None else given
        batch_name = values["name"]
        if batch_name is None:
            raise _bad("batch", "'name' is missing", method, path)
        extra = {str(k): v for k, v in obj.items() if k not in ("id", "name", "workspace")}
        return cls(
            id=batch_id,
            name=batch_name,
            workspace=values["workspace"],
            extra=MappingProxyType(extra),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MultipartSession:
    """A multipart upload session: send parts of `part_size` bytes (the last may be shorter)."""

    session_id: str
    part_size: int

    @classmethod
    def from_json(cls, data: object, *, method: str, path: str) -> MultipartSession:
        """Build a session from createMultipartUploadSession's response.

        Raises:
            HubResponseError: no non-empty `session_id` string or no positive `part_size`.
        """
        what = "multipart session"
        obj = _object(data, what, method, path)
        session_id = obj.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise _bad(what, "'session_id' must be a non-empty string", method, path)
        part_size = as_int(obj.get("part_size"))
        if part_size is None or part_size < 1:
            raise _bad(what, "'part_size' must be a positive integer", method, path)
        return cls(session_id=session_id, part_size=part_size)


def build_batch_request(*, name: str, workspace: str | None = None) -> dict[str, Any]:
    """The JSON body of createBatch (the server enforces the name's 255-character limit)."""
    body: dict[str, Any] = {"name": name}
    if workspace is not None:
        body["workspace"] = workspace
    return body


def build_multipart_request(*, batch_id: int, filename: str, file_size: int) -> dict[str, Any]:
    """The JSON body of createMultipartUploadSession.

    Raises:
        ValueError: a bool or negative number, or a filename that is not one path segment.
    """
    _check_count("batch_id", batch_id)
    _check_count("file_size", file_size)
    check_filename(filename)
    return {"batch_id": batch_id, "filename": filename, "file_size": file_size}


def build_commit_request(parts: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """The JSON body that commits a multipart session: every part, in order.

    Raises:
        ValueError: no parts, part numbers not 1, 2, 3, ... (the spec requires consecutive
            numbers from 1), or an empty part id.
    """
    if not parts:
        raise ValueError("a multipart commit needs at least one part")
    out: list[dict[str, Any]] = []
    for expected, (part_num, part_id) in enumerate(parts, start=1):
        if isinstance(part_num, bool) or part_num != expected:
            raise ValueError(f"part numbers must be 1, 2, 3, ...: got {part_num} at {expected}")
        if not isinstance(part_id, str) or not part_id:
            raise ValueError(f"part {part_num}: part_id must be a non-empty string")
        out.append({"part_num": part_num, "part_id": part_id})
    return {"action": "commit", "parts": out}


def check_filename(filename: str) -> None:
    """A batch file name is one path segment: not empty, '.', '..', and without '/'.

    Raises:
        ValueError: it is not.
    """
    if not filename or filename in (".", "..") or "/" in filename:
        raise ValueError(f"a batch file name must be one path segment, got {filename!r}")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _object(data: object, what: str, method: str, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _bad(what, f"expected a JSON object, got {json_type(data)}", method, path)
    return data


def _bad(what: str, why: str, method: str, path: str) -> HubResponseError:
    return HubResponseError(f"response is not a {what}: {why}", method=method, path=path)


def build_run_request(
    *,
    input_dir: str | None = None,
    batch_id: int | None = None,
    output_dir: str | None = None,
    version: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of runDeployment. Pure; only the given fields are included.

    Neither `input_dir` nor `batch_id` is allowed on purpose: the server's 400 is the authority.
    `settings` may hold read-only mappings and tuples (a Rule's settings); they become dicts/lists.

    Raises:
        TypeError: a value is not JSON-representable (a programming or config error).
        ValueError: NaN/infinity in settings, or a bool batch_id.
    """
    body: dict[str, Any] = {}
    if batch_id is not None:
        if isinstance(batch_id, bool) or not isinstance(batch_id, int):
            raise ValueError(f"batch_id must be an int, got {type(batch_id).__name__}")
        body["batch_id"] = batch_id
    if input_dir is not None:
        body["input_dir"] = input_dir
    if output_dir is not None:
        body["output_dir"] = output_dir
    if version is not None:
        body["version"] = version
    if settings is not None:
        body["settings"] = _plain_json(settings, "settings")
    return body


def _plain_json(value: object, where: str) -> Any:
    """Deep-copy into plain JSON types (mappings -> dict, tuples -> list)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not valid JSON")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {type(k).__name__}")
            out[k] = _plain_json(v, f"{where}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [_plain_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} is not JSON-representable")
