"""The AI Hub wire format: URL paths and query params out; JSON bodies, Retry-After and error
messages in. Pure helpers for the client and the models.

Imports only `watcher.hub.errors` (and httpx's Response type); never config, ledger or pipeline.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote

import httpx

from watcher.hub.errors import HubResponseError

__all__ = [
    "Params",
    "as_int",
    "dump_body",
    "encode_path",
    "error_message",
    "json_body",
    "json_type",
    "list_params",
    "parse_retry_after",
    "path_segment",
]

_SORT_BY: Final = frozenset({"start_timestamp", "status"})
_ORDER: Final = frozenset({"ASCENDING", "DESCENDING"})
# list_runs takes Unix seconds; a value this large is a nanosecond/millisecond timestamp passed by
# mistake (Run timestamps are ns), which would silently filter out everything.
_MAX_SECONDS: Final = 10**11
_MAX_MESSAGE_CHARS: Final = 500
_INT_TEXT: Final = re.compile(r"-?[0-9]+")

Params = list[tuple[str, str | int | float | bool | None]]


# --- out: paths, query params, bodies --------------------------------------------------------


def encode_path(path: str) -> str:
    """Percent-encode an AI Hub path segment by segment ('/' separators kept, every other
    reserved or non-ASCII character encoded as UTF-8); empty segments (leading, trailing or
    doubled slashes) are dropped.

    Raises:
        ValueError: the path is empty or has '.'/'..' segments (URL normalisation would move them).
    """
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise ValueError("empty AI Hub path")
    if any(s in (".", "..") for s in segments):
        raise ValueError(f"AI Hub path has a '.' or '..' segment: {path!r}")
    return "/".join(quote(s, safe="") for s in segments)


def path_segment(value: str) -> str:
    """One path segment (a deployment or run id), fully percent-encoded.

    Raises:
        ValueError: the id is empty, '.' or '..'.
    """
    if not value or value in (".", ".."):
        raise ValueError(f"invalid id for a URL path segment: {value!r}")
    return quote(value, safe="")


def list_params(
    *,
    deployment_id: str | None,
    status: Sequence[str] | None,
    from_timestamp: int | None,
    to_timestamp: int | None,
    limit: int | None,
    offset: int | None,
    sort_by: str | None,
    order: str | None,
) -> Params:
    """The query params of GET /v2/apps/runs, in a fixed order; only the given filters.

    Raises:
        ValueError: a timestamp looks like ms/ns, a count is negative, or sort_by/order is not
            a spec value.
    """
    params: Params = []
    if deployment_id is not None:
        params.append(("deployment_id", deployment_id))
    if status is not None:
        # A bare string is one status, not a sequence of one-letter statuses.
        statuses = [status] if isinstance(status, str) else list(status)
        params.extend(("status", s) for s in statuses)
    for name, ts in (("from_timestamp", from_timestamp), ("to_timestamp", to_timestamp)):
        if ts is not None:
            if abs(ts) >= _MAX_SECONDS:
                raise ValueError(f"{name} must be Unix seconds, got {ts} (ms or ns?)")
            params.append((name, int(ts)))
    for name, n in (("limit", limit), ("offset", offset)):
        if n is not None:
            if n < 0:
                raise ValueError(f"{name} must not be negative")
            params.append((name, n))
    if sort_by is not None:
        if sort_by not in _SORT_BY:
            raise ValueError(f"sort_by must be one of {sorted(_SORT_BY)}")
        params.append(("sort_by", sort_by))
    if order is not None:
        if order not in _ORDER:
            raise ValueError(f"order must be one of {sorted(_ORDER)}")
        params.append(("order", order))
    return params


def dump_body(body: Mapping[str, Any]) -> bytes:
    """A request body as compact UTF-8 JSON (NaN and infinity refused: they are not JSON)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


# --- in: bodies, headers, error messages -----------------------------------------------------


def json_body(resp: httpx.Response, method: str, path: str) -> object:
    """The decoded JSON body of a 2xx response.

    Raises:
        HubResponseError: the body is not JSON.
    """
    return decode_json(resp.content, resp.status_code, method, path)


def decode_json(content: bytes, status: int, method: str, path: str) -> object:
    """`content` (the body of a `status` answer) decoded as JSON.

    Raises:
        HubResponseError: the body is not JSON.
    """
    try:
        data: object = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise HubResponseError(
            f"HTTP {status} body is not JSON", method=method, path=path
        ) from None
    return data


def error_message(resp: httpx.Response) -> str:
    """The server's `message` from a spec `error` body, else the reason phrase."""
    try:
        data = json.loads(resp.content) if resp.content else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, Mapping):
        message = data.get("message")
        if isinstance(message, str) and message.strip():
            text = message.strip()
            return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."
    if resp.reason_phrase:
        return resp.reason_phrase
    try:
        return HTTPStatus(resp.status_code).phrase
    except ValueError:
        return "error"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date; None if absent
    or unparseable; never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claimed zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- JSON values -----------------------------------------------------------------------------


def as_int(value: object) -> int | None:
    """An integer from JSON: int, integral float, or a decimal string (proto3 JSON sends int64 as
    strings); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def json_type(value: object) -> str:
    """The JSON type name of a decoded value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
