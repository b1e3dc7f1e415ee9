"""`HubClient`: the AI Hub REST client (thread-safe, pooled keep-alive connections); typed results.

The only httpx user: every httpx failure becomes a `watcher.hub.errors.Hub*` error here.
Imports only the core and `watcher.hub.errors`; never config, ledger or pipeline.
"""

from __future__ import annotations

import email.utils
import json
import math
import queue
import re
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from types import MappingProxyType, TracebackType
from typing import Any, Final
from urllib.parse import quote

import httpx

from watcher import __version__
from watcher.errors import TokenError
from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubRejectedError,
    HubResponseError,
    HubServerError,
    HubTransportError,
)

__all__ = [
    "USER_AGENT",
    "FileMetadata",
    "HubClient",
    "Run",
    "build_run_request",
    "encode_path",
    "parse_retry_after",
]

USER_AGENT: Final = f"aihub-watcher/{__version__}"

# httpx failures that happen before any byte of the request can have reached the server. Everything
# else (read/write errors and timeouts, "server disconnected", undecodable bodies, ...) may follow a
# request the server already acted on, so for a POST it is ambiguous: the run may exist.
_NEVER_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    # h11 refuses to emit an invalid request before writing it.
    httpx.LocalProtocolError,
    httpx.InvalidURL,
)
# Exceptions httpx raises on purpose. StreamError (a RuntimeError) only follows misuse of a streamed
# response, which this module never does: a bug, so it is left to crash.
_HTTPX_ERRORS: Final = (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict)
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})

_SORT_BY: Final = frozenset({"start_timestamp", "status"})
_ORDER: Final = frozenset({"ASCENDING", "DESCENDING"})
# list_runs takes Unix seconds; a value this large is a nanosecond/millisecond timestamp passed by
# mistake (Run timestamps are ns), which would silently filter out everything.
_MAX_SECONDS: Final = 10**11
_MAX_MESSAGE_CHARS: Final = 500
_MIN_SCRUB_CHARS: Final = 8
_INT_TEXT: Final = re.compile(r"-?[0-9]+")

_Params = list[tuple[str, str | int | float | bool | None]]


# --- results ---------------------------------------------------------------------------------


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
            raise bad(f"expected a JSON object, got {_json_type(data)}")
        values: dict[str, Any] = {}
        for name in ("id", "status"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise bad(f"'{name}' must be a non-empty string, got {_json_type(value)}")
            values[name] = value
        for name in ("start_timestamp", "finish_timestamp", "batch_id"):
            raw = data.get(name)
            number = _as_int(raw)
            if raw is not None and number is None:
                raise bad(f"'{name}' must be an integer, got {_json_type(raw)}")
            values[name] = number
        for name in ("msg", "input_dir", "app_id", "deployment_id"):
            raw = data.get(name)
            if raw is not None and not isinstance(raw, str):
                raise bad(f"'{name}' must be a string, got {_json_type(raw)}")
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

    def to_json(self) -> dict[str, Any]:
        """The run as a spec-shaped JSON object: known fields that are set, then unknown ones."""
        out: dict[str, Any] = {}
        for name in _RUN_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        out.update(self.extra)
        return out

    def log_fields(self) -> dict[str, Any]:
        """Known fields that are set, JSON-ready, for a log line or the ledger's last response."""
        out: dict[str, Any] = {}
        for name in _RUN_FIELDS:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


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
class FileMetadata:
    """What HEAD /v2/files/{path} says about a path in the AI Hub filesystem."""

    path: str
    is_folder: bool
    size: int | None  # bytes; files only
    last_modified: str | None  # as the server sent it; files only


# --- pure helpers ----------------------------------------------------------------------------


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


# --- the client ------------------------------------------------------------------------------


class HubClient:
    """AI Hub API client; safe to share between worker threads.

    Every method raises only `watcher.hub.errors.HubError` subclasses for hub or network failures
    (never httpx exceptions). Using a closed client raises RuntimeError (a bug).

    Connections: `max_connections` sync httpx.Clients of one keep-alive connection each, lent to
    one thread at a time (LIFO, so light traffic reuses one warm connection). Not a single
    httpx.Client shared by all threads, because httpcore 1.0.x's sync pool races when threads
    share it: one thread's pool upkeep reads another's connection as idle-and-readable (its
    response just arrived) and closes it mid-request (encode/httpcore#1110). Measured here, 8
    threads x 50 POSTs on one Client(max_connections=4): 2-3% failed with EBADF or hung until
    the read timeout, i.e. spurious HubAmbiguousErrors.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        context: str | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        ca_bundle: str | None = None,
        max_connections: int = 16,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Build the client. `base_url` is the API root, e.g. https://aihub.instabase.com/api.

        Raises:
            ValueError: base_url is not an http(s) URL without query, or a limit is not positive.
            TokenError: the token is empty or not sendable in an HTTP header.
            OSError: `ca_bundle` cannot be read or holds no usable certificate (ssl.SSLError).
        """
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
            raise ValueError(f"base_url must be an http(s) URL without query: {base_url!r}")
        if timeout_s <= 0 or connect_timeout_s <= 0 or max_connections < 1:
            raise ValueError("timeouts and max_connections must be positive")
        # Checked here, because h11 would otherwise reject the header at send time with the
        # value in its message, and the message would carry the token.
        if not token or not token.isascii() or not token.isprintable() or token != token.strip():
            raise TokenError("the API token is empty or has characters not allowed in a header")
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._context = context or None
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if self._context is not None:
            headers["IB-Context"] = self._context
        # Always verifying; a private CA replaces the default trust store rather than disabling
        # it. One context for all connections (loading a trust store takes ~20 ms).
        verify: ssl.SSLContext | bool = True  # unused by httpx when a transport is given
        if ca_bundle:
            verify = ssl.create_default_context(cafile=ca_bundle)
        elif transport is None:
            verify = httpx.create_ssl_context(trust_env=True)
        self._pool_timeout_s = timeout_s
        self._clients = tuple(
            httpx.Client(
                # A trailing slash makes httpx append "v2/..." below the root's own path.
                base_url=self._base_url + "/",
                headers=headers,
                timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                verify=verify,
                trust_env=True,  # proxies (HTTPS_PROXY, NO_PROXY, ...) as httpx reads them
                follow_redirects=False,
                transport=transport,
            )
            for _ in range(max_connections)
        )
        self._idle: queue.LifoQueue[httpx.Client] = queue.LifoQueue()
        for client in reversed(self._clients):
            self._idle.put(client)

    def __repr__(self) -> str:
        return f"HubClient(base_url={self._base_url!r}, context={self._context!r})"

    @property
    def base_url(self) -> str:
        """The API root this client talks to (no trailing slash)."""
        return self._base_url

    @property
    def context(self) -> str | None:
        """The IB-Context header value, if configured."""
        return self._context

    def close(self) -> None:
        """Close every connection. Idempotent; later calls raise RuntimeError."""
        for client in self._clients:
            client.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- operations ---

    def run_deployment(
        self,
        *,
        deployment_id: str,
        input_dir: str | None = None,
        batch_id: int | None = None,
        output_dir: str | None = None,
        version: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Run:
        """POST /v2/apps/deployments/{deployment_id}/runs; the created run (status 202).

        Raises:
            HubAmbiguousError: the request may have reached the server but no answer came back.
            HubResponseError: 2xx whose body is not a run (the run may exist).
            HubTransportError, HubStatusError subclasses: see watcher.hub.errors.
        """
        body = build_run_request(
            input_dir=input_dir,
            batch_id=batch_id,
            output_dir=output_dir,
            version=version,
            settings=settings,
        )
        path = f"/v2/apps/deployments/{_segment(deployment_id)}/runs"
        resp = self._request("POST", path, body=body)
        return Run.from_json(_json_body(resp, "POST", path), method="POST", path=path)

    def get_run(self, run_id: str) -> Run:
        """GET /v2/apps/runs/{run_id}.

        Raises:
            HubTransportError, HubResponseError, HubStatusError subclasses (404: HubRejectedError).
        """
        path = f"/v2/apps/runs/{_segment(run_id)}"
        resp = self._request("GET", path)
        return Run.from_json(_json_body(resp, "GET", path), method="GET", path=path)

    def list_runs(
        self,
        *,
        deployment_id: str | None = None,
        status: Sequence[str] | None = None,
        from_timestamp: int | None = None,
        to_timestamp: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: str | None = None,
        order: str | None = None,
    ) -> list[Run]:
        """GET /v2/apps/runs with filters (timestamps in Unix seconds; `status` repeated).

        The server defaults `from_timestamp` to 24 hours ago when it is not given.

        Raises:
            ValueError: a timestamp looks like ms/ns, or sort_by/order is not a spec value.
            HubTransportError, HubResponseError, HubStatusError subclasses.
        """
        params = _list_params(
            deployment_id=deployment_id,
            status=status,
            from_timestamp=from_timestamp,
            to_timestamp=to_timestamp,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            order=order,
        )
        path = "/v2/apps/runs"
        resp = self._request("GET", path, params=params)
        data = _json_body(resp, "GET", path)
        if not isinstance(data, Mapping):
            raise HubResponseError(
                f"run list is not a JSON object, got {_json_type(data)}", method="GET", path=path
            )
        # Serialisers that omit empty repeated fields send no "runs" at all for an empty page.
        items = data.get("runs")
        if items is None:
            return []
        if not isinstance(items, list):
            raise HubResponseError(
                f"'runs' must be a list, got {_json_type(items)}", method="GET", path=path
            )
        return [Run.from_json(item, method="GET", path=path) for item in items]

    def iter_runs(
        self,
        *,
        page_size: int = 100,
        deployment_id: str | None = None,
        status: Sequence[str] | None = None,
        from_timestamp: int | None = None,
        to_timestamp: int | None = None,
        sort_by: str | None = None,
        order: str | None = None,
    ) -> Iterator[Run]:
        """Every matching run, fetched page by page with limit/offset; each run id once.

        Stops on a short page, and on a page with nothing new (a server ignoring `offset`
        must not loop forever). Raises what `list_runs` raises, while iterating.
        """
        if page_size < 1:
            raise ValueError("page_size must be positive")
        seen: set[str] = set()
        offset = 0
        while True:
            page = self.list_runs(
                deployment_id=deployment_id,
                status=status,
                from_timestamp=from_timestamp,
                to_timestamp=to_timestamp,
                limit=page_size,
                offset=offset,
                sort_by=sort_by,
                order=order,
            )
            new = [run for run in page if run.id not in seen]
            for run in new:
                seen.add(run.id)
                yield run
            if len(page) < page_size or not new:
                return
            offset += len(page)

    def file_metadata(self, path: str) -> FileMetadata | None:
        """HEAD /v2/files/{path}: file or folder metadata, or None when nothing is there (404).

        Raises:
            ValueError: empty path or '.'/'..' segments.
            HubTransportError, HubResponseError, HubStatusError subclasses (not for 404).
        """
        req_path = f"/v2/files/{encode_path(path)}"
        resp = self._request("HEAD", req_path, allow_404=True)
        if resp.status_code == 404:
            return None
        content_type = resp.headers.get("content-type", "")
        is_folder = content_type.split(";")[0].strip().lower() == "application/json"
        size: int | None = None
        if not is_folder and "content-length" in resp.headers:
            size = _as_int(resp.headers["content-length"])
            if size is None:
                raise HubResponseError(
                    "Content-Length is not an integer", method="HEAD", path=req_path
                )
        return FileMetadata(
            path=path,
            is_folder=is_folder,
            size=size,
            last_modified=None if is_folder else resp.headers.get("last-modified"),
        )

    # --- plumbing ---

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: _Params | None = None,
        body: dict[str, Any] | None = None,
        allow_404: bool = False,
    ) -> httpx.Response:
        content: bytes | None = None
        headers: dict[str, str] | None = None
        if body is not None:
            content = json.dumps(
                body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers = {"Content-Type": "application/json"}
        # Relative to base_url, whose trailing slash keeps the root's path ("/api").
        url = path.lstrip("/")
        try:
            client = self._idle.get(timeout=self._pool_timeout_s)
        except queue.Empty:
            raise HubTransportError(
                f"PoolTimeout: all {len(self._clients)} connections busy for "
                f"{self._pool_timeout_s:g}s",
                method=method,
                path=path,
            ) from None
        try:
            with self._translate_errors(method, path):
                # Not streamed: the body is read (and the connection free) when this returns.
                resp = client.request(method, url, params=params, content=content, headers=headers)
        finally:
            self._idle.put(client)
        if not (allow_404 and resp.status_code == 404):
            self._raise_for_status(resp, method, path)
        return resp

    @contextmanager
    def _translate_errors(self, method: str, path: str) -> Iterator[None]:
        """Re-raise httpx errors as ours, `from` the original unless its text shows the token."""
        try:
            yield
        except _HTTPX_ERRORS as exc:
            detail = self._scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            err: HubError
            if method in _SAFE_METHODS or isinstance(exc, _NEVER_SENT):
                err = HubTransportError(detail, method=method, path=path)
            else:
                err = HubAmbiguousError(
                    f"no response after sending ({detail}); the request may have taken effect",
                    method=method,
                    path=path,
                )
            cause = exc if self._scrub(str(exc)) == str(exc) else None
            raise err from cause

    def _raise_for_status(self, resp: httpx.Response, method: str, path: str) -> None:
        """Raise the HubStatusError subclass for a non-2xx response; return for 2xx."""
        code = resp.status_code
        if 200 <= code < 300:
            return
        message = self._scrub(_error_message(resp))
        kw: dict[str, Any] = {"method": method, "path": path, "http_status": code}
        if code in (401, 403):
            raise HubAuthError(message, **kw)
        if code == 429:
            retry_after = parse_retry_after(resp.headers.get("retry-after"))
            raise HubRateLimitedError(message, retry_after_s=retry_after, **kw)
        if code == 504 and method not in _SAFE_METHODS:
            # A gateway stopped waiting for the origin, which may still have created the run.
            raise HubAmbiguousError(
                f"HTTP 504: {message}; the request may have taken effect", method=method, path=path
            )
        # 408: the server gave up waiting for the request, so it was not processed: transient.
        if code >= 500 or code == 408:
            raise HubServerError(message, **kw)
        if 300 <= code < 400 and "location" in resp.headers:
            # Redirects are never followed (they would resend the token): base_url is wrong.
            message = self._scrub(f"unexpected redirect to {resp.headers['location']}")
        raise HubRejectedError(message, **kw)

    def _scrub(self, text: str) -> str:
        # A token too short to be a real one (a test's "t") would shred ordinary words instead.
        if len(self._token) < _MIN_SCRUB_CHARS:
            return text
        return text.replace(self._token, "***")


# --- private helpers -------------------------------------------------------------------------


def _segment(value: str) -> str:
    """One path segment (a deployment or run id), fully percent-encoded."""
    if not value or value in (".", ".."):
        raise ValueError(f"invalid id for a URL path segment: {value!r}")
    return quote(value, safe="")


def _list_params(
    *,
    deployment_id: str | None,
    status: Sequence[str] | None,
    from_timestamp: int | None,
    to_timestamp: int | None,
    limit: int | None,
    offset: int | None,
    sort_by: str | None,
    order: str | None,
) -> _Params:
    params: _Params = []
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


def _json_body(resp: httpx.Response, method: str, path: str) -> object:
    try:
        data: object = json.loads(resp.content)
    except (ValueError, UnicodeDecodeError):
        raise HubResponseError(
            f"HTTP {resp.status_code} body is not JSON", method=method, path=path
        ) from None
    return data


def _error_message(resp: httpx.Response) -> str:
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


def _as_int(value: object) -> int | None:
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


def _json_type(value: object) -> str:
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
