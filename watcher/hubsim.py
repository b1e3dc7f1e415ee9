"""Loopback AI Hub simulator: runs, run status, run list, file metadata, fault flags, JSONL record.

Implements the OpenAPI spec on its own with the stdlib only and imports no watcher module (least of
all `hub.py`), so a client bug can never be mirrored by the fake.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import copy
import email.utils
import enum
import hmac
import http
import json
import math
import random
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

API_PREFIX: Final = "/api"
# Statuses after which a run has a finish_timestamp.
_FINISHED_STATUSES: Final = frozenset({"CANCELLED", "COMPLETE", "FAILED"})
MAX_TAGS_CHARS: Final = 500
MAX_HEADER_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = 1024 * 1024
LINGER_SECONDS: Final = 2.0
_DAY_S: Final = 24 * 60 * 60
_NS_PER_S: Final = 1_000_000_000
_APP_NAMESPACE: Final = uuid.UUID("5d6b1c1e-6a43-4f0e-9a8e-6b1f1c0d2a7e")
_LOST: Final = 0  # recorded status of a request whose response was deliberately never sent


@dataclass(slots=True, kw_only=True)
class SimOptions:
    """Server address, token and fault switches; mutable so tests can flip faults while it runs."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str = field(default="t", repr=False)
    record: Path | None = None
    fail_rate: float = 0.0  # P of 503 on run submission
    rate_limit: float | None = None  # run submissions per second, then 429 + Retry-After
    latency_ms: float = 0.0  # added before answering any request
    lose_response_rate: float = 0.0  # create the run, then close the connection with no response
    run_seconds: float = 0.0  # RUNNING -> COMPLETE after this
    fail_runs: float = 0.0  # P that a run ends FAILED
    seed: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedRequest:
    """One request as the simulator saw it; headers (and so the Authorization token) are never kept.

    `path` is the raw (still percent-encoded) request path; `status` is 0 when the response was
    deliberately lost (lose_response_rate).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    time: float

    def to_json(self) -> dict[str, Any]:
        """The JSONL record line for this request."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
            "status": self.status,
            "time": self.time,
        }


class _BadRequest(Exception):
    """A client error detected while validating a request; becomes a JSON error response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True, kw_only=True)
class _Run:
    id: str
    deployment_id: str
    app_id: str
    input_dir: str | None
    batch_id: int | None
    output_dir: str | None
    version: str | None
    settings: dict[str, Any] | None
    tags: tuple[str, ...]
    start_ns: int
    duration_ns: int  # decided at creation, so later option changes don't rewrite history
    final_status: str
    final_msg: str | None
    override_status: str | None = None
    override_finish_ns: int | None = None

    def status_at(self, now_ns: int) -> tuple[str, int | None, str | None]:
        """(status, finish_timestamp, msg) at `now_ns`: computed lazily instead of with timers."""
        if self.override_status is not None:
            return self.override_status, self.override_finish_ns, None
        finish_ns = self.start_ns + self.duration_ns
        if now_ns >= finish_ns:
            return self.final_status, finish_ns, self.final_msg
        return "RUNNING", None, None

    def to_spec(self, now_ns: int) -> dict[str, Any]:
        status, finish_ns, msg = self.status_at(now_ns)
        return {
            "id": self.id,
            "status": status,
            "start_timestamp": self.start_ns,
            "finish_timestamp": finish_ns,
            "msg": msg,
            "batch_id": self.batch_id,
            "input_dir": self.input_dir,
            "app_id": self.app_id,
            "deployment_id": self.deployment_id,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class _Response:
    status: int
    body: Any = None  # JSON-encodable, or None for no body
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    content_length: int | None = None  # HEAD: the length of the entity the headers describe
    lose: bool = False  # close the connection instead of answering


class _Next(enum.Enum):
    """What a connection does after a response."""

    KEEP = "keep"
    CLOSE = "close"
    LINGER = "linger"  # unread request bytes may follow: half-close and drain before closing


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then discard what the client still sends for a moment before closing.

    Closing a socket with unread input makes the kernel send RST, which can destroy the error
    response before the client reads it (the "lingering close" of RFC 9112 section 9.6).
    """
    with contextlib.suppress(OSError, TimeoutError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_SECONDS):
            while await reader.read(65536):
                pass


def _error(status: int, message: str, *headers: tuple[str, str]) -> _Response:
    return _Response(status=status, body={"message": message}, headers=headers)


def _app_id_for(deployment_id: str) -> str:
    # Stable across restarts so tests and the demo can filter on it.
    return str(uuid.uuid5(_APP_NAMESPACE, deployment_id))


def _start_ns(run: _Run) -> int:
    return run.start_ns


def _path_key(path: str) -> str:
    return path.strip("/")


def _ancestors(key: str) -> Iterator[str]:
    parts = key.split("/")
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


class HubSim:
    """The simulator: state (runs, known paths, recorded requests) plus the asyncio HTTP/1.1 server.

    Handlers run on the simulator's loop thread; the public accessors are safe from any thread.
    """

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._rng = random.Random(options.seed)
        self._runs: list[_Run] = []  # in start_ns order (start_ns is strictly increasing)
        self._by_id: dict[str, _Run] = {}
        self._by_deployment: dict[str, list[_Run]] = {}
        self._last_start_ns = 0
        self._folders: set[str] = set()
        self._files: dict[str, tuple[int, float]] = {}  # path key -> (size, mtime)
        self._requests: list[RecordedRequest] = []
        self._record_file: IO[str] | None = None
        self._connections_accepted = 0
        self._bucket_rate: float | None = None
        self._bucket_tokens = 0.0
        self._bucket_at = 0.0
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._url: str | None = None

    # ----------------------------------------------------------------- public, any thread
    @property
    def url(self) -> str:
        """The API root, e.g. http://127.0.0.1:41234/api."""
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def runs(self) -> list[dict[str, Any]]:
        """A snapshot of created runs in the spec `run` shape plus output_dir, version, settings."""
        now_ns = time.time_ns()
        with self._lock:
            out = []
            for run in self._runs:
                data = run.to_spec(now_ns)
                data["output_dir"] = run.output_dir
                data["version"] = run.version
                data["settings"] = copy.deepcopy(run.settings)
                out.append(data)
            return out

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted (proves keep-alive reuse)."""
        return self._connections_accepted

    def set_run_status(self, run_id: str, status: str) -> None:
        """Force a run's status from now on (e.g. STOPPED_AT_CHECKPOINT, CANCELLED).

        Raises KeyError when no such run exists.
        """
        now_ns = time.time_ns()
        with self._lock:
            run = self._by_id[run_id]
            run.override_status = status
            run.override_finish_ns = now_ns if status in _FINISHED_STATUSES else None

    def add_path(self, path: str, size: int | None = None) -> None:
        """Make HEAD /v2/files/{path} answer 200: a folder when `size` is None, else a file."""
        key = _path_key(path)
        with self._lock:
            if size is None:
                self._folders.update(_ancestors(key))
            else:
                self._files[key] = (size, time.time())
                parent = key.rpartition("/")[0]
                if parent:
                    self._folders.update(_ancestors(parent))

    def request_stop(self) -> None:
        """Ask a running `run()` to stop; callable from any thread."""
        loop, event = self._loop, self._stop_requested
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing to stop
                loop.call_soon_threadsafe(event.set)

    # ----------------------------------------------------------------- lifecycle, loop thread
    async def start(self) -> None:
        """Bind the listening socket and open the record file; `url` is valid afterwards."""
        if self._server is not None:
            raise RuntimeError("the simulator is already started")
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        if self.options.record is not None:
            self._record_file = self.options.record.open("a", encoding="utf-8")
        try:
            self._server = await asyncio.start_server(
                self._handle_connection,
                host=self.options.host,
                port=self.options.port,
                limit=MAX_HEADER_BYTES,
                reuse_address=True,
            )
        except BaseException:
            self._close_record()
            raise
        sockname = self._server.sockets[0].getsockname()
        host = sockname[0]
        if ":" in host:
            host = f"[{host}]"
        self._url = f"http://{host}:{sockname[1]}{API_PREFIX}"

    async def stop(self) -> None:
        """Stop listening, drop open connections (keep-alive clients would hold us forever)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Closing the transports ends idle handlers with EOF; only busy ones (latency sleep,
        # lingering close) are left to cancel.
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            _done, pending = await asyncio.wait(set(self._handlers), timeout=0.25)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if server is not None:
            await server.wait_closed()
        self._close_record()

    async def run(self, *, ready: Callable[[HubSim], None] | None = None) -> None:
        """Start, call `ready(self)`, serve until `request_stop()`, then stop."""
        await self.start()
        try:
            if ready is not None:
                ready(self)
            assert self._stop_requested is not None
            await self._stop_requested.wait()
        finally:
            await self.stop()

    def _close_record(self) -> None:
        if self._record_file is not None:
            self._record_file.close()
            self._record_file = None

    # ----------------------------------------------------------------- HTTP/1.1 connection
    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self._connections_accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Headers and body leave in one write, but a small write must not wait on a delayed ACK.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while (after := await self._serve_one(reader, writer)) is _Next.KEEP:
                pass
            if after is _Next.LINGER:
                await _linger(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels a handler. Ending normally keeps 3.11's StreamReaderProtocol
            # from logging the cancellation as an unhandled error.
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Next:
        """Read, answer and record one request; say what happens to the connection next."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return _Next.CLOSE  # the client closed an idle connection
            await self._send_error(writer, _error(400, "incomplete request head"))
            return _Next.CLOSE
        except asyncio.LimitOverrunError:
            await self._send_error(writer, _error(431, "request head too large"))
            return _Next.LINGER

        try:
            method, target, version, headers = _parse_head(head)
        except _BadRequest as exc:
            await self._send_error(writer, _error(exc.status, exc.message))
            return _Next.LINGER

        tokens = {t.strip() for t in headers.get("connection", "").lower().split(",")}
        keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        is_head = method == "HEAD"
        raw_path, query = _split_target(target)

        try:
            body = await self._read_body(reader, writer, headers)
        except _BadRequest as exc:
            # The unread body's end is unknown, so the connection can't carry another request.
            response = _error(exc.status, exc.message)
            self._record(method, raw_path, query, None, response.status)
            await self._send(writer, response, keep_alive=False, is_head=is_head, version=version)
            return _Next.LINGER

        if self.options.latency_ms > 0:
            await asyncio.sleep(self.options.latency_ms / 1000)

        try:
            response = self._dispatch(method, raw_path, query, headers, body)
        except _BadRequest as exc:
            response = _error(exc.status, exc.message)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            response = _error(500, f"simulator error: {type(exc).__name__}")
            keep_alive = False

        status = _LOST if response.lose else response.status
        self._record(method, raw_path, query, _json_or_none(body), status)
        if response.lose:
            return _Next.CLOSE
        await self._send(writer, response, keep_alive=keep_alive, is_head=is_head, version=version)
        return _Next.KEEP if keep_alive else _Next.CLOSE

    async def _read_body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: Mapping[str, str]
    ) -> bytes:
        if "transfer-encoding" in headers:
            raise _BadRequest(411, "chunked request bodies are not supported; send Content-Length")
        length_text = headers.get("content-length")
        if length_text is None:
            return b""
        if not length_text.isdigit():
            raise _BadRequest(400, "invalid Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        if length == 0:
            return b""
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return await reader.readexactly(length)

    async def _send_error(self, writer: asyncio.StreamWriter, response: _Response) -> None:
        """Answer a request we could not parse (nothing to record: no method or path)."""
        await self._send(writer, response, keep_alive=False, is_head=False, version="HTTP/1.1")

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        response: _Response,
        *,
        keep_alive: bool,
        is_head: bool,
        version: str,
    ) -> None:
        body = b"" if response.body is None else _dump(response.body)
        length = response.content_length if response.content_length is not None else len(body)
        status = response.status
        lines = [
            f"HTTP/1.1 {status} {_reason(status)}",
            "Server: aihub-sim",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {length}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if not keep_alive:
            lines.append("Connection: close")
        elif version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not is_head:
            data += body
        writer.write(data)  # one write: headers and body in one segment
        await writer.drain()

    # ----------------------------------------------------------------- recording
    def _record(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, status: int
    ) -> None:
        entry = RecordedRequest(
            method=method, path=path, query=query, body=body, status=status, time=time.time()
        )
        with self._lock:
            self._requests.append(entry)
        if self._record_file is not None:
            # Flushed per line so the file is complete even when the process is killed.
            self._record_file.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
            self._record_file.flush()

    # ----------------------------------------------------------------- routing
    def _dispatch(
        self,
        method: str,
        raw_path: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Response:
        if not self._authorized(headers.get("authorization")):
            return _error(
                401, "missing or invalid bearer token", ("WWW-Authenticate", 'Bearer realm="aihub"')
            )
        if raw_path != API_PREFIX and not raw_path.startswith(API_PREFIX + "/"):
            return _error(404, "not found")
        rest = raw_path[len(API_PREFIX) :]

        if rest.startswith("/v2/files/") and len(rest) > len("/v2/files/"):
            if method != "HEAD":
                return _error(405, "method not allowed", ("Allow", "HEAD"))
            return self._file_metadata(rest[len("/v2/files/") :])

        segments = rest.split("/")[1:]
        if segments == ["v2", "apps", "runs"]:
            if method != "GET":
                return _error(405, "method not allowed", ("Allow", "GET"))
            return self._list_runs(query)
        if len(segments) == 4 and segments[:3] == ["v2", "apps", "runs"] and segments[3]:
            if method != "GET":
                return _error(405, "method not allowed", ("Allow", "GET"))
            return self._get_run(_decode_segment(segments[3]))
        if (
            len(segments) == 5
            and segments[:3] == ["v2", "apps", "deployments"]
            and segments[3]
            and segments[4] == "runs"
        ):
            if method != "POST":
                return _error(405, "method not allowed", ("Allow", "POST"))
            return self._run_deployment(_decode_segment(segments[3]), body)
        return _error(404, "not found")

    def _authorized(self, value: str | None) -> bool:
        if value is None:
            return False
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self.options.token.encode())

    # ----------------------------------------------------------------- POST .../runs
    def _run_deployment(self, deployment_id: str, body: bytes) -> _Response:
        opts = self.options
        retry_after = self._take_rate_token(opts.rate_limit)
        if retry_after is not None:
            return _error(429, "rate limit exceeded", ("Retry-After", str(retry_after)))
        if opts.fail_rate > 0 and self._rng.random() < opts.fail_rate:
            return _error(503, "service temporarily unavailable (simulated)")
        fields = _validate_run_request(body)
        lose = opts.lose_response_rate > 0 and self._rng.random() < opts.lose_response_rate
        failed = opts.fail_runs > 0 and self._rng.random() < opts.fail_runs
        run = self._create_run(deployment_id, fields, failed=failed)
        data = run.to_spec(run.start_ns)
        # The spec answers a fresh run as RUNNING even when run_seconds is 0.
        data.update(status="RUNNING", finish_timestamp=None, msg=None)
        return _Response(status=202, body=data, lose=lose)

    def _take_rate_token(self, rate: float | None) -> int | None:
        """Token bucket over run submissions: None when allowed, else Retry-After seconds."""
        if not rate or rate <= 0:
            self._bucket_rate = None
            return None
        now = time.monotonic()
        capacity = max(1.0, rate)
        if self._bucket_rate != rate:
            # (Re)armed: start full, so a new limit allows one second's worth at once.
            self._bucket_rate, self._bucket_tokens, self._bucket_at = rate, capacity, now
        self._bucket_tokens = min(capacity, self._bucket_tokens + (now - self._bucket_at) * rate)
        self._bucket_at = now
        if self._bucket_tokens >= 1.0:
            self._bucket_tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._bucket_tokens) / rate))

    def _create_run(self, deployment_id: str, fields: dict[str, Any], *, failed: bool) -> _Run:
        settings = fields.get("settings")
        tags = tuple(settings.get("tags") or ()) if isinstance(settings, dict) else ()
        input_dir = fields.get("input_dir")
        with self._lock:
            # Strictly increasing start times keep self._runs sorted for bisect-based time filters.
            start_ns = max(time.time_ns(), self._last_start_ns + 1)
            self._last_start_ns = start_ns
            run = _Run(
                id=str(uuid.uuid4()),
                deployment_id=deployment_id,
                app_id=_app_id_for(deployment_id),
                input_dir=input_dir,
                batch_id=fields.get("batch_id"),
                output_dir=fields.get("output_dir"),
                version=fields.get("version"),
                settings=settings,
                tags=tags,
                start_ns=start_ns,
                duration_ns=max(0, round(self.options.run_seconds * _NS_PER_S)),
                final_status="FAILED" if failed else "COMPLETE",
                final_msg="simulated run failure" if failed else None,
            )
            self._runs.append(run)
            self._by_id[run.id] = run
            self._by_deployment.setdefault(deployment_id, []).append(run)
            if input_dir:
                self._folders.update(_ancestors(_path_key(input_dir)))
        return run

    # ----------------------------------------------------------------- GET runs
    def _get_run(self, run_id: str) -> _Response:
        now_ns = time.time_ns()
        with self._lock:
            run = self._by_id.get(run_id)
            if run is None:
                return _error(404, "run not found")
            return _Response(status=200, body=run.to_spec(now_ns))

    def _list_runs(self, query: dict[str, list[str]]) -> _Response:
        now = time.time()
        now_ns = time.time_ns()
        statuses = {
            s.strip() for value in query.get("status", ()) for s in value.split(",") if s.strip()
        }
        from_s = _int_param(query, "from_timestamp")
        to_s = _int_param(query, "to_timestamp")
        limit = _int_param(query, "limit", minimum=0)
        offset = _int_param(query, "offset", minimum=0) or 0
        sort_by = (
            _choice_param(query, "sort_by", ("start_timestamp", "status")) or "start_timestamp"
        )
        order = _choice_param(query, "order", ("ASCENDING", "DESCENDING")) or "DESCENDING"
        deployment_id = _str_param(query, "deployment_id")
        run_id = _str_param(query, "run_id")
        app_id = _str_param(query, "app_id")
        # Seconds compared at second granularity: a run started at 12.7 s matches to_timestamp=12.
        lo_ns = (math.floor(now) - _DAY_S if from_s is None else from_s) * _NS_PER_S
        # No run starts in the future, so "up to now" (the spec default) means no upper bound.
        hi_ns = None if to_s is None else (to_s + 1) * _NS_PER_S - 1

        with self._lock:
            if run_id is not None:
                one = self._by_id.get(run_id)
                pool: list[_Run] = [one] if one is not None else []
            elif deployment_id is not None:
                pool = self._by_deployment.get(deployment_id, [])
            else:
                pool = self._runs
            lo = bisect.bisect_left(pool, lo_ns, key=_start_ns)
            hi = len(pool) if hi_ns is None else bisect.bisect_right(pool, hi_ns, key=_start_ns)
            window = pool[lo:hi]
            want = None if limit is None else offset + limit
            picked: list[tuple[_Run, str]] = []
            ordered: Iterable[_Run] = window if order == "ASCENDING" else reversed(window)
            for run in ordered:
                if deployment_id is not None and run.deployment_id != deployment_id:
                    continue
                if app_id is not None and run.app_id != app_id:
                    continue
                status = run.status_at(now_ns)[0]
                if statuses and status not in statuses:
                    continue
                picked.append((run, status))
                # Sorting by start time: the window is already ordered, so stop at the page end.
                if sort_by == "start_timestamp" and want is not None and len(picked) >= want:
                    break
            if sort_by == "status":
                # A stable sort keeps the start-time order (as requested) within one status.
                picked.sort(key=lambda pair: pair[1], reverse=order == "DESCENDING")
            page = picked[offset:] if limit is None else picked[offset : offset + limit]
            return _Response(status=200, body={"runs": [run.to_spec(now_ns) for run, _ in page]})

    # ----------------------------------------------------------------- HEAD files
    def _file_metadata(self, raw: str) -> _Response:
        key = _path_key(_decode_segment(raw))
        with self._lock:
            file = self._files.get(key)
            is_folder = key in self._folders
        if file is not None:
            size, mtime = file
            return _Response(
                status=200,
                content_type="application/octet-stream",
                content_length=size,
                headers=(("Last-Modified", email.utils.formatdate(mtime, usegmt=True)),),
            )
        if is_folder:
            return _Response(status=200, content_type="application/json", content_length=0)
        return _Response(status=404, content_length=0)


# --------------------------------------------------------------------- parsing helpers
def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers of an HTTP/1.x request head (ending in CRLF CRLF)."""
    text = head.lstrip(b"\r\n")[:-4].decode("latin-1")  # latin-1 maps every byte: no error
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise _BadRequest(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        if key in headers:
            if key == "content-length" and headers[key] != value:
                raise _BadRequest(400, "conflicting Content-Length headers")
            headers[key] = f"{headers[key]}, {value}" if key != "content-length" else value
        else:
            headers[key] = value
    return method.upper(), target, version, headers


def _split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    if target.startswith(("http://", "https://")):  # absolute-form: keep only path and query
        parts = urlsplit(target)
        target = parts.path + ("?" + parts.query if parts.query else "")
    raw_path, _, raw_query = target.partition("?")
    return raw_path, parse_qs(raw_query, keep_blank_values=True)


def _decode_segment(raw: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise _BadRequest(400, "path is not valid percent-encoded UTF-8") from exc


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


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
        raise _BadRequest(400, f"query parameter {name} must be an integer") from exc
    if minimum is not None and number < minimum:
        raise _BadRequest(400, f"query parameter {name} must be >= {minimum}")
    return number


def _choice_param(query: dict[str, list[str]], name: str, choices: tuple[str, ...]) -> str | None:
    value = _last_param(query, name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise _BadRequest(400, f"query parameter {name} must be one of {', '.join(choices)}")
    return value


def _check_type(
    obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], label: str
) -> None:
    if key not in obj:
        return
    value = obj[key]
    # bool is an int in Python but not an integer in JSON Schema.
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
    if not ok:
        raise _BadRequest(400, f"{key} must be {label}")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _validate_run_request(body: bytes) -> dict[str, Any]:
    """Check a runDeployment body against the spec's request schema; the fields on success."""
    try:
        data = json.loads(body) if body else None
    except ValueError as exc:
        raise _BadRequest(400, "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise _BadRequest(400, "request body must be a JSON object")
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
        raise _BadRequest(400, "one of input_dir or batch_id is required")
    settings = data.get("settings")
    if isinstance(settings, dict):
        _validate_settings(settings)
    return data


def _validate_settings(settings: dict[str, Any]) -> None:
    _check_type(settings, "keys", dict, "an object")
    _check_type(settings, "runtime_config", dict, "an object")
    _check_type(settings, "tags", list, "an array of strings")
    keys = settings.get("keys")
    if isinstance(keys, dict):
        _check_type(keys, "custom", dict, "an object")
        _check_type(keys, "secret", dict, "an object")
        secret = keys.get("secret")
        if isinstance(secret, dict) and not all(isinstance(v, str) for v in secret.values()):
            raise _BadRequest(400, "settings.keys.secret values must be strings")
    tags = settings.get("tags")
    if isinstance(tags, list):
        if not all(isinstance(t, str) for t in tags):
            raise _BadRequest(400, "settings.tags must be an array of strings")
        if sum(len(t) for t in tags) > MAX_TAGS_CHARS:
            raise _BadRequest(
                400, f"combined length of settings.tags must not exceed {MAX_TAGS_CHARS} characters"
            )


# --------------------------------------------------------------------- entry points
@contextlib.contextmanager
def serve_in_thread(options: SimOptions) -> Iterator[HubSim]:
    """Run a simulator on its own loop in a (non-daemon) thread; stop and join it on exit.

    Raises whatever binding the socket raised (e.g. OSError for a port in use).
    """
    sim = HubSim(options)
    started = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(sim.run(ready=lambda _sim: started.set()))
        except BaseException as exc:
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=target, name="hubsim", daemon=False)
    thread.start()
    started.wait()
    if failure:
        thread.join()
        raise failure[0]
    try:
        yield sim
    finally:
        sim.request_stop()
        thread.join(timeout=30)
        if thread.is_alive():  # pragma: no cover - a hang here is a simulator bug
            raise RuntimeError("the simulator thread did not stop")
        if failure:
            raise failure[0]


def run_forever(options: SimOptions) -> int:
    """Serve until SIGINT/SIGTERM; print the API root URL as the first stdout line. Returns 0.

    Raises OSError when the address can't be bound.
    """

    def ready(sim: HubSim) -> None:
        # Handlers first: a parent may send SIGTERM as soon as it has read the URL.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, sim.request_stop)
        print(sim.url, flush=True)

    asyncio.run(HubSim(options).run(ready=ready))
    return 0


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from exc
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `hub-sim` flags to `parser` (the CLI's subcommand parser)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=0, help="port; 0 picks a free one (default 0)"
    )
    parser.add_argument("--token", required=True, help="the Bearer token clients must present")
    parser.add_argument(
        "--record", type=Path, metavar="FILE.jsonl", help="append one JSON line per request"
    )
    parser.add_argument(
        "--fail-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P of 503 per run submission",
    )
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        default=None,
        metavar="N",
        help="run submissions per second, then 429 with Retry-After",
    )
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, help="delay before every answer"
    )
    parser.add_argument(
        "--lose-response-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P of creating the run, then closing the connection with no response",
    )
    parser.add_argument(
        "--run-seconds",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="runs stay RUNNING for S seconds, then COMPLETE",
    )
    parser.add_argument(
        "--fail-runs", type=_probability, default=0.0, metavar="P", help="P that a run ends FAILED"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault decisions")


def options_from_args(ns: argparse.Namespace) -> SimOptions:
    """Build SimOptions from a namespace parsed with `add_arguments`."""
    return SimOptions(
        host=ns.host,
        port=ns.port,
        token=ns.token,
        record=ns.record,
        fail_rate=ns.fail_rate,
        rate_limit=ns.rate_limit,
        latency_ms=ns.latency_ms,
        lose_response_rate=ns.lose_response_rate,
        run_seconds=ns.run_seconds,
        fail_runs=ns.fail_runs,
        seed=ns.seed,
    )
