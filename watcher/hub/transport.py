"""`DirectTransport`: an httpx transport over the standard library's `http.client`, for the one
keep-alive connection of each pooled client; and `proxy_in_environment`, which says when httpx's
own transport must be used instead.

Why: per request, httpcore + h11 cost ~0.6 ms of CPU here against ~0.1 ms for `http.client` on the
same keep-alive socket (bench/PERF13.md); in a burst that was a third of the daemon's CPU. The
httpx `Client` above it stays, so requests, responses, timeouts and errors keep httpx's types: this
transport raises the httpx exception httpcore would raise in the same situation (a refused connect
is `ConnectError`, a silent server `ReadTimeout`, a reset after sending `ReadError` ...), which
`watcher.hub.translate` maps. TLS is always verified (the `ssl.SSLContext` comes from the pool).

Imports nothing from `watcher`.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

__all__ = [
    "SEND_BEFORE",
    "DirectTransport",
    "SendDeadlinePassed",
    "check_send_before",
    "proxy_in_environment",
]

# Request extension: a wall-clock time (time.time()) after which the request must not be sent.
SEND_BEFORE = "aihub_send_before"


class SendDeadlinePassed(Exception):
    """The request's `SEND_BEFORE` time had passed just before its first byte went out."""


def check_send_before(request: httpx.Request) -> None:
    """Raise SendDeadlinePassed if the request carries a send deadline that has passed.

    Called as late as can be: right before the request's bytes are written (several hosts on
    one ledger fence a run's POST by their claim's lease this way; see pipeline/submit.py)."""
    deadline = request.extensions.get(SEND_BEFORE)
    if deadline is not None and time.time() >= deadline:
        late = time.time() - deadline
        raise SendDeadlinePassed(f"send deadline passed {late:.3f}s ago; nothing was sent")


def proxy_in_environment(scheme: str) -> bool:
    """True when the environment names a proxy for `scheme` (or ALL_PROXY): httpx's own
    transport then serves every request, with its exact proxy and NO_PROXY rules."""
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all"))


class _BodyError(Exception):
    """What the request body's own iterator raised, carried past http.client's send()."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """`chunks`, with anything their producer raises wrapped, so it is told apart from a socket
    error and re-raised unchanged (an upload's source file that changed mid-send)."""
    it = iter(chunks)
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except Exception as exc:
            raise _BodyError(exc) from exc
        yield chunk


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None, float | None]:
    t: dict[str, Any] = request.extensions.get("timeout", {})
    return t.get("connect"), t.get("write"), t.get("read")


def _stale(sock: socket.socket) -> bool:
    """A kept-alive socket that is readable before we sent anything was closed by the server
    (EOF) or holds garbage: it must not carry a request. httpcore checks the same."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class DirectTransport(httpx.BaseTransport):
    """One HTTP/1.1 keep-alive connection to `base_url`'s origin, used by one thread at a time
    (the pool lends its client to one thread); reconnects when the server closed it."""

    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | None) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._scheme = url.scheme
        self._host = url.host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"DirectTransport({self._scheme}://{self._host}:{self._port})"

    def _connection(self, request: httpx.Request, connect_s: float | None) -> Any:
        conn = self._conn
        if conn is not None and (conn.sock is None or _stale(conn.sock)):
            conn.close()
        if conn is None:
            if self._scheme == "https":
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=connect_s, context=self._ssl_context
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=connect_s)
            self._conn = conn
        if conn.sock is None:
            conn.timeout = connect_s
            try:
                conn.connect()
            except TimeoutError as exc:
                conn.close()
                raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
            except OSError as exc:  # refused, unreachable, DNS, TLS verification (ssl.SSLError)
                conn.close()
                raise httpx.ConnectError(str(exc), request=request) from exc
        return conn

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != self._scheme or request.url.host != self._host:
            raise httpx.UnsupportedProtocol(f"not this transport's origin: {request.url}")
        connect_s, write_s, read_s = _timeouts(request)
        conn = self._connection(request, connect_s)
        try:
            self._send(conn, request, write_s)
        except _BodyError as exc:
            conn.close()
            raise exc.original from None
        except SendDeadlinePassed:
            # Its request line and headers sit in http.client's buffer, which close() keeps:
            # a new connection object, or the next request would follow them on the wire.
            conn.close()
            self._conn = None
            raise
        except TimeoutError as exc:
            conn.close()
            raise httpx.WriteTimeout(str(exc) or "timed out", request=request) from exc
        except OSError:
            # The server may have answered and closed before taking the whole body (a 413):
            # read that answer, as httpcore does; without one the read below fails instead.
            sent = False
        else:
            sent = True
        try:
            conn.sock.settimeout(read_s)
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError as exc:
            conn.close()
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except http.client.HTTPException as exc:  # closed before or while answering, bad framing
            conn.close()
            raise httpx.RemoteProtocolError(
                str(exc) or type(exc).__name__, request=request
            ) from exc
        except OSError as exc:
            conn.close()
            raise httpx.ReadError(str(exc), request=request) from exc
        if resp.will_close or not sent:  # a half-sent request leaves the socket unusable
            conn.close()
        return httpx.Response(
            resp.status,
            headers=resp.getheaders(),
            stream=httpx.ByteStream(data),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": resp.reason.encode()},
            request=request,
        )

    @staticmethod
    def _send(
        conn: http.client.HTTPConnection, request: httpx.Request, write_s: float | None
    ) -> None:
        conn.sock.settimeout(write_s)
        conn.putrequest(
            request.method,
            request.url.raw_path.decode("ascii"),
            skip_host=True,
            skip_accept_encoding=True,
        )
        for name, value in request.headers.raw:
            conn.putheader(name, value)
        body: bytes | Iterator[bytes] | None
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = _guarded(request.stream)  # type: ignore[arg-type]
        # Everything above only buffers; endheaders() writes the first byte.
        check_send_before(request)
        conn.endheaders(body or None)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
