"""HTTP/1.1 framing for the simulator on h11: one connection's requests in, one write per response.

Keep-alive, pipelining, Expect: 100-continue, bodies buffered or streamed into a sink, error
answers to malformed requests and the lingering close. Knows nothing of the API; imports no
watcher module outside sim/.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import http
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

import h11

# h11 answers 431 when a request head is still incomplete past this many bytes.
MAX_HEADER_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = 1024 * 1024  # a buffered body; a streamed one has its sink's own limit
LINGER_SECONDS: Final = 2.0
_READ_BYTES: Final = 256 * 1024
_SERVER: Final = (b"Server", b"aihub-sim")
_CLOSE: Final = (b"Connection", b"close")
# Fixed texts for requests h11 refuses: its own messages may quote the offending header line,
# and that line can hold the Authorization token.
_MALFORMED: Final = {
    400: "malformed request",
    431: "request head too large",
    501: "unsupported Transfer-Encoding",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    method: str
    path: str  # raw: still percent-encoded
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes  # empty when the body was streamed into `sink`
    sink: BodySink | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    status: int
    body: Any = None  # JSON-encodable, or None for no body
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    content_length: int | None = None  # HEAD: the length of the entity the headers describe
    lose: bool = False  # close the connection instead of answering
    close: bool = False  # answer, then close the connection


def error(status: int, message: str, *headers: tuple[str, str], close: bool = False) -> Response:
    """A JSON error response in the spec's `error` shape."""
    return Response(status=status, body={"message": message}, headers=headers, close=close)


class BodySink(Protocol):
    """Where a streamed request body goes, chunk by chunk as it arrives; never all at once."""

    def write(self, data: bytes) -> None:
        """Take the next chunk of the body."""
        ...


class App(Protocol):
    """What a connection hands complete requests to."""

    def open_body(self, request: Request) -> BodySink | Response | None:
        """Before the body is read: a sink to stream it into, None to buffer it (at most
        MAX_BODY_BYTES), or a Response that refuses it unread."""
        ...

    async def respond(self, request: Request) -> Response:
        """The answer to `request` (the app records it)."""
        ...

    def refused(self, request: Request, response: Response) -> None:
        """Record a request refused before its body was read (the answer is `response`)."""
        ...


class _Next(enum.Enum):
    """What a connection does after a response."""

    KEEP = "keep"
    CLOSE = "close"
    LINGER = "linger"  # unread request bytes may follow: half-close and drain before closing


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, app: App
) -> None:
    """Answer requests on one connection until either side ends it."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        while (after := await _serve_one(conn, reader, writer, app)) is _Next.KEEP:
            conn.start_next_cycle()
        if after is _Next.LINGER:
            await _linger(reader, writer)
    except ConnectionError:
        pass


async def _serve_one(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, app: App
) -> _Next:
    """Read, answer and record one request; say what happens to the connection next."""
    try:
        event = await _next_event(conn, reader)
    except h11.RemoteProtocolError as exc:
        status = exc.error_status_hint
        message = _MALFORMED.get(status) or _phrase(status)
        await _send(conn, writer, error(status, message, close=True), head=False)
        return _Next.LINGER
    if not isinstance(event, h11.Request):
        return _Next.CLOSE  # ConnectionClosed: the client closed an idle connection
    if event.http_version not in (b"1.1", b"1.0"):
        unsupported = error(505, "only HTTP/1.0 and HTTP/1.1 are supported", close=True)
        await _send(conn, writer, unsupported, head=False)
        return _Next.LINGER

    # raw_items() is a plain list; iterating the h11 Headers sequence itself costs ~10x more.
    headers = _header_dict(event.headers.raw_items())
    raw_path, query = _split_target(event.target.decode("ascii"))
    method = event.method.decode("ascii").upper()
    head = method == "HEAD"
    request = Request(method=method, path=raw_path, query=query, headers=headers, body=b"")
    target: BodySink | Response | None = _refuse_chunked(headers)
    if target is None:
        target = app.open_body(request)
    if target is None and int(headers.get("content-length", "0")) > MAX_BODY_BYTES:
        target = error(413, "request body too large", close=True)
    if isinstance(target, Response):
        return await _refuse(conn, reader, writer, app, request=request, response=target)

    if conn.they_are_waiting_for_100_continue:
        interim = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
        writer.write(conn.send(interim))
    try:
        body = await _read_body(conn, reader, target)
    except h11.RemoteProtocolError:
        return _Next.CLOSE  # the client went away mid-body: nobody to answer
    response = await app.respond(
        Request(method=method, path=raw_path, query=query, headers=headers, body=body, sink=target)
    )
    if response.lose:
        return _Next.CLOSE
    await _send(conn, writer, response, head=head)
    # Not DONE but MUST_CLOSE: Connection: close from either side, or an HTTP/1.0 client.
    return _Next.KEEP if conn.our_state is h11.DONE else _Next.CLOSE


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Event:
    """The next h11 event, reading as needed. Raises h11.RemoteProtocolError."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_READ_BYTES))
        elif isinstance(event, h11.Event):
            return event
        else:  # PAUSED can't happen: each cycle ends with our response before the next begins
            raise AssertionError(f"unexpected h11 state {event!r}")


def _refuse_chunked(headers: Mapping[str, str]) -> Response | None:
    """The 411 for a chunked body (the simulator wants each body's length up front), else None."""
    if "transfer-encoding" in headers:
        message = "chunked request bodies are not supported; send Content-Length"
        return error(411, message, close=True)
    return None


async def _refuse(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    app: App,
    *,
    request: Request,
    response: Response,
) -> _Next:
    """Answer `response` without reading the body; the connection survives only an empty one."""
    app.refused(request, response)
    head = request.method == "HEAD"
    chunked = "transfer-encoding" in request.headers
    if not response.close and not chunked and int(request.headers.get("content-length", "0")) == 0:
        with contextlib.suppress(h11.RemoteProtocolError):
            await _read_body(conn, reader, None)  # only EndOfMessage: nothing to read
            await _send(conn, writer, response, head=head)
            return _Next.KEEP if conn.our_state is h11.DONE else _Next.CLOSE
        return _Next.CLOSE
    # The unread body's end is unknown or unwanted, so the connection can't carry another request.
    await _send(conn, writer, dataclasses.replace(response, close=True), head=head)
    return _Next.LINGER


async def _read_body(
    conn: h11.Connection, reader: asyncio.StreamReader, sink: BodySink | None
) -> bytes:
    """The request body up to its end (b"" when streamed into `sink`).

    Raises h11.RemoteProtocolError when it is cut short.
    """
    chunks = []
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            if sink is None:
                chunks.append(event.data)
            else:
                sink.write(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise h11.RemoteProtocolError("connection closed within the request body")


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, response: Response, *, head: bool
) -> None:
    """Frame `response` with h11 and send it in one write (no body when answering HEAD)."""
    body = b"" if response.body is None else _dump(response.body)
    length = response.content_length if response.content_length is not None else len(body)
    headers = [_SERVER]
    if response.status != 204:  # RFC 9110: a 204 carries neither
        headers.append((b"Content-Type", response.content_type.encode("latin-1")))
        headers.append((b"Content-Length", str(length).encode("ascii")))
    headers += [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
    ]
    if response.close:
        headers.append(_CLOSE)
    status = response.status
    data = conn.send(
        h11.Response(status_code=status, headers=headers, reason=_phrase(status).encode("ascii"))
    )
    if body and not head:
        data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    writer.write(data)  # one write: headers and body in one segment
    await writer.drain()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then discard what the client still sends for a moment before closing.

    Closing a socket with unread input makes the kernel send RST, which can destroy the error
    response before the client reads it (the "lingering close" of RFC 9112 section 9.6).
    """
    with contextlib.suppress(OSError, TimeoutError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_SECONDS):
            while await reader.read(_READ_BYTES):
                pass


def _header_dict(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names to values; a repeated header's values joined with ", "."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("ascii").lower(), raw_value.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    if target.startswith(("http://", "https://")):  # absolute-form: keep only path and query
        parts = urlsplit(target)
        target = parts.path + ("?" + parts.query if parts.query else "")
    raw_path, _, raw_query = target.partition("?")
    return raw_path, parse_qs(raw_query, keep_blank_values=True)


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
