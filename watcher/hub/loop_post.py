"""`LoopPoster`: the run POST over asyncio streams, on the event loop's own thread.

Why: in a burst, each POST on a worker thread cost a thread hop both ways and put 16 threads in
line for the GIL, which the loop thread then waited for after every SQLite call (bench/PERF13.md:
a ledger statement took 3-12x its own time). On the loop there is no hop and no queue: in a
10,000-drop burst the daemon submitted 1.4-1.5x as many runs per second for 30 % less CPU per run.

Same request and same answers as `HubClient.run_deployment`: the body; the headers (token,
context, user agent; no cookies: the threaded path sends back any the hub set, and AI Hub's API
sets none); TLS verified with the pool's own `ssl.SSLContext`; the connect timeout, and the
client's timeout for sending and for the answer together. Every failure is the `Hub*` error the
threaded path raises: a connection that cannot be made is `HubTransportError` (nothing was sent),
a failure after the first byte went out is `HubAmbiguousError`, a status is judged by
`raise_for_status`, a 2xx body by `decode_json` and `Run.from_json`. Only for a pool that
talks directly to the server (no proxy, no test transport: `ConnectionPool.direct`).

Imports only `watcher.hub` and the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
import time
from collections.abc import Mapping
from typing import Any, Final

import httpx

from watcher.hub.errors import (
    HubAmbiguousError,
    HubNotSentError,
    HubTransportError,
)
from watcher.hub.models import Run
from watcher.hub.requests import run_request
from watcher.hub.translate import raise_for_status
from watcher.hub.wire import decode_json, dump_body
from watcher.redact import scrub

__all__ = ["LoopPoster"]

_METHOD: Final = "POST"
# An answer's head larger than this is not AI Hub's (StreamReader's line limit is 64 KiB).
_MAX_HEADERS: Final = 100


class _Closed(Exception):
    """The server closed the connection before a whole answer arrived."""


class LoopPoster:
    """POSTs runs on the running loop over up to `size` kept-alive connections."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        connect_timeout_s: float,
        ssl_context: ssl.SSLContext | None,
        secret: str,
        size: int,
    ) -> None:
        url = httpx.URL(base_url)
        # On the wire as httpx sends them: the IDNA host and the percent-encoded path.
        raw_host = url.raw_host.decode("ascii")
        self._host = raw_host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._prefix = url.raw_path.decode("ascii").split("?", 1)[0].rstrip("/")
        self._ssl = ssl_context if url.scheme == "https" else None
        host = f"[{raw_host}]" if ":" in raw_host else raw_host
        authority = host if url.port is None else f"{host}:{url.port}"
        fixed = {"Host": authority, **headers, "Content-Type": "application/json"}
        # Sent as is, so nothing asks for a compressed answer that would need decoding.
        fixed["Accept-Encoding"] = "identity"
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._secret = secret
        self._size = size
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # where its connections live
        self._keeper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"LoopPoster({self._host}:{self._port}, idle={len(self._idle)})"

    async def run_deployment(self, *, send_before: float | None = None, **kw: Any) -> Run:
        """As `HubClient.run_deployment`, awaited on the loop.

        Raises:
            HubNotSentError: `send_before` had passed when the request was about to go out.
            HubAmbiguousError, HubResponseError, HubTransportError, HubStatusError subclasses:
                as `HubClient.run_deployment`.
        """
        req = run_request(**kw)
        body = dump_body(req.body)
        path = self._prefix + req.path
        # Made before any connection: a request that cannot be encoded was never sent.
        data = (f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n").encode(
            "ascii"
        ) + body
        reader, writer = await self._connection(req.path)
        # As late as can be: nothing below awaits before the bytes are handed to the socket.
        if send_before is not None and time.time() >= send_before:
            self._give_back(reader, writer)
            late = time.time() - send_before
            raise HubNotSentError(
                f"send deadline passed {late:.3f}s ago; nothing was sent",
                method=_METHOD,
                path=req.path,
            )
        try:
            async with asyncio.timeout(self._timeout_s):
                writer.write(data)
                await writer.drain()
                status, headers, content, keep = await _read_answer(reader)
        except asyncio.CancelledError:
            _drop(writer)  # half a conversation: never reused
            raise
        except (OSError, TimeoutError, _Closed, ValueError, asyncio.IncompleteReadError) as exc:
            _drop(writer)
            detail = scrub(f"{type(exc).__name__}: {exc}".rstrip(": "), self._secret)
            raise HubAmbiguousError(
                f"no response after sending ({detail}); the request may have taken effect",
                method=_METHOD,
                path=req.path,
            ) from None
        if keep:
            self._give_back(reader, writer)
        else:
            _drop(writer)
        if not 200 <= status < 300:
            # Identity was asked for: a body that claims an encoding is judged as it came.
            plain = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
            resp = httpx.Response(status, headers=plain, content=content)
            raise_for_status(resp, _METHOD, req.path, secret=self._secret)
        decoded = decode_json(content, status, _METHOD, req.path)
        return Run.from_json(decoded, method=_METHOD, path=req.path)

    async def _connection(self, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            # Closed by the server while idle, or holding bytes nobody asked for: not reused
            # (the server may have closed it between answers without a Connection: close).
            if _stale(reader, writer):
                _drop(writer)
                continue
            return reader, writer
        self._keep_until_loop_ends()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                return await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except (OSError, TimeoutError) as exc:
            kind = "ConnectTimeout" if isinstance(exc, TimeoutError) else "ConnectError"
            detail = scrub(f"{kind}: {exc}".rstrip(": "), self._secret)
            raise HubTransportError(detail, method=_METHOD, path=path) from None

    def _keep_until_loop_ends(self) -> None:
        """A task that closes the idle connections when it is cancelled: asyncio.run cancels
        every task before it closes its loop, and a connection must close on its own loop."""
        loop = asyncio.get_running_loop()
        if self._keeper is not None and not self._keeper.done() and self._loop is loop:
            return
        self._loop = loop
        self._keeper = loop.create_task(self._close_when_cancelled(), name="hub connections")

    async def _close_when_cancelled(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.close()

    def _give_back(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Kept only while a keeper will close it before its loop ends (not after close()).
        kept = self._keeper is not None and not self._keeper.done()
        if kept and len(self._idle) < self._size:
            self._idle.append((reader, writer))
        else:
            _drop(writer)

    def close(self) -> None:
        """Close the idle connections (a POST in flight closes its own when it ends). Safe from
        any thread: the loop that owns them closes them."""
        idle, self._idle = self._idle, []
        keeper, self._keeper = self._keeper, None
        loop = self._loop
        if loop is None:
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop and keeper is not None and keeper is not asyncio.current_task():
            keeper.cancel()  # a retired client (new token): its keeper has nothing left to do
        for _reader, writer in idle:
            if on_loop:
                _drop(writer)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed: the process ends
                    loop.call_soon_threadsafe(_drop, writer)


def _drop(writer: asyncio.StreamWriter) -> None:
    """Close a connection now. Not `close()`: over TLS that waits for the server's close_notify
    (up to 30 s), and the loop may end first; no connection dropped here owes the server one."""
    writer.transport.abort()


def _stale(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """True for an idle connection that must not carry a request: closed, or with bytes (a FIN,
    a 408, TLS close_notify) waiting in the loop's buffer or in the socket, which the loop may
    not have read yet (as httpcore checks before reusing a connection)."""
    if reader.at_eof() or writer.is_closing():
        return True
    buffered: object = getattr(reader, "_buffer", None)  # StreamReader has no public check
    if buffered:
        return True
    sock = writer.get_extra_info("socket")
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


async def _read_answer(
    reader: asyncio.StreamReader,
) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    """Status, headers, body and whether the connection may be reused, of one HTTP/1.1 answer.

    Raises:
        _Closed: the connection ended first. ValueError: not an HTTP/1.x answer.
    """
    while True:
        line = await reader.readline()
        if not line:
            raise _Closed("server disconnected without sending a response")
        version, _, rest = line.decode("latin-1").partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {line[:40]!r}")
        status = int(rest.split(" ", 1)[0])
        headers = await _read_headers(reader)
        if status >= 200:
            break  # 1xx interim answers (100 Continue) are skipped
    fields = {k.lower(): v for k, v in headers}
    connection = fields.get("connection", "").lower()
    keep = version == "HTTP/1.1" and "close" not in connection
    if "chunked" in fields.get("transfer-encoding", "").lower():
        content = await _read_chunked(reader)
    elif "content-length" in fields:
        content = await reader.readexactly(int(fields["content-length"]))
    elif status in (204, 304):
        content = b""
    else:
        content, keep = await reader.read(), False  # delimited by the end of the connection
    return status, headers, content, keep


async def _read_headers(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for _ in range(_MAX_HEADERS):
        line = await reader.readline()
        if not line:
            raise _Closed("server disconnected in the middle of the headers")
        if line in (b"\r\n", b"\n"):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line[:40]!r}")
        headers.append((name.strip(), value.strip()))
    raise ValueError(f"more than {_MAX_HEADERS} header lines")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise _Closed("server disconnected in the middle of a chunked body")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            await _read_headers(reader)  # trailers, then the blank line
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)  # the chunk's CRLF
