"""HTTP/1.1 framing for the simulator: one connection's requests in, one write per response out.

Keep-alive, pipelining, Expect: 100-continue, error answers to malformed requests and the
lingering close. Knows nothing of the API; imports nothing from watcher outside the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import http
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

MAX_HEADER_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = 1024 * 1024
LINGER_SECONDS: Final = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    method: str
    path: str  # raw: still percent-encoded
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    status: int
    body: Any = None  # JSON-encodable, or None for no body
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    content_length: int | None = None  # HEAD: the length of the entity the headers describe
    lose: bool = False  # close the connection instead of answering
    close: bool = False  # answer, then close the connection


def error(status: int, message: str, *headers: tuple[str, str]) -> Response:
    """A JSON error response in the spec's `error` shape."""
    return Response(status=status, body={"message": message}, headers=headers)


class App(Protocol):
    """What a connection hands complete requests to."""

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


class _FramingError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, app: App
) -> None:
    """Answer requests on one connection until either side ends it."""
    try:
        while (after := await _serve_one(reader, writer, app)) is _Next.KEEP:
            pass
        if after is _Next.LINGER:
            await _linger(reader, writer)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, app: App) -> _Next:
    """Read, answer and record one request; say what happens to the connection next."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return _Next.CLOSE  # the client closed an idle connection
        await _send_error(writer, error(400, "incomplete request head"))
        return _Next.CLOSE
    except asyncio.LimitOverrunError:
        await _send_error(writer, error(431, "request head too large"))
        return _Next.LINGER

    try:
        method, target, version, headers = _parse_head(head)
    except _FramingError as exc:
        await _send_error(writer, error(exc.status, exc.message))
        return _Next.LINGER

    tokens = {t.strip() for t in headers.get("connection", "").lower().split(",")}
    keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    is_head = method == "HEAD"
    raw_path, query = _split_target(target)
    request = Request(method=method, path=raw_path, query=query, headers=headers, body=b"")

    try:
        body = await _read_body(reader, writer, headers)
    except _FramingError as exc:
        # The unread body's end is unknown, so the connection can't carry another request.
        response = error(exc.status, exc.message)
        app.refused(request, response)
        await _send(writer, response, keep_alive=False, is_head=is_head, version=version)
        return _Next.LINGER

    response = await app.respond(
        Request(method=method, path=raw_path, query=query, headers=headers, body=body)
    )
    if response.lose:
        return _Next.CLOSE
    keep_alive = keep_alive and not response.close
    await _send(writer, response, keep_alive=keep_alive, is_head=is_head, version=version)
    return _Next.KEEP if keep_alive else _Next.CLOSE


async def _read_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: Mapping[str, str]
) -> bytes:
    if "transfer-encoding" in headers:
        raise _FramingError(411, "chunked request bodies are not supported; send Content-Length")
    length_text = headers.get("content-length")
    if length_text is None:
        return b""
    if not length_text.isdigit():
        raise _FramingError(400, "invalid Content-Length")
    length = int(length_text)
    if length > MAX_BODY_BYTES:
        raise _FramingError(413, "request body too large")
    if length == 0:
        return b""
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return await reader.readexactly(length)


async def _send_error(writer: asyncio.StreamWriter, response: Response) -> None:
    """Answer a request we could not parse (nothing to record: no method or path)."""
    await _send(writer, response, keep_alive=False, is_head=False, version="HTTP/1.1")


async def _send(
    writer: asyncio.StreamWriter,
    response: Response,
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


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers of an HTTP/1.x request head (ending in CRLF CRLF)."""
    text = head.lstrip(b"\r\n")[:-4].decode("latin-1")  # latin-1 maps every byte: no error
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise _FramingError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _FramingError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise _FramingError(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        if key in headers:
            if key == "content-length" and headers[key] != value:
                raise _FramingError(400, "conflicting Content-Length headers")
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


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
