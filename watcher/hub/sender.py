"""`Sender`: one request through the connection pool and the one translator; the plumbing that
`HubClient` and `BatchClient` share, so both lend the same connections and raise the same errors.

Imports only the core and `watcher.hub`; never config, ledger or pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx

from watcher.hub.errors import HubNotSentError, HubTransportError
from watcher.hub.pool import ConnectionPool
from watcher.hub.translate import raise_for_status, translate_errors
from watcher.hub.transport import (
    SEND_BEFORE,
    DirectTransport,
    SendDeadlinePassed,
    check_send_before,
)
from watcher.hub.wire import Params, dump_body

__all__ = ["Sender"]

# Absolute URLs built per relative path, kept for reuse: parsing and joining a URL is a fifth of
# httpx's own CPU per request (bench/PERF13.md). Run ids make paths unbounded, hence the cap.
_URL_CACHE_SIZE: Final = 512


class Sender:
    """Sends requests with a connection borrowed from `pool` for the call's duration only.

    Holds the token only to scrub it from error text; its repr shows nothing of it.
    """

    def __init__(self, pool: ConnectionPool, *, secret: str, pool_timeout_s: float) -> None:
        self._pool = pool
        self._secret = secret
        self._pool_timeout_s = pool_timeout_s
        self._urls: dict[str, httpx.URL] = {}

    def __repr__(self) -> str:
        return f"Sender(pool={self._pool!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        stream: Iterator[bytes] | None = None,
        stream_length: int | None = None,
        allow_404: bool = False,
        send_before: float | None = None,
    ) -> httpx.Response:
        """Send one request; the whole response is read when this returns. `body` is sent as
        JSON; `stream` as application/octet-stream of exactly `stream_length` bytes, pulled one
        chunk at a time while the connection writes (never joined in memory).

        `send_before`: a time.time() after which the request must not go out (checked right
        before its first byte is written); past it, HubNotSentError and nothing was sent.

        Raises:
            HubError subclasses (see watcher.hub.errors); whatever `stream` raises, unchanged.
        """
        content, headers = _content(body, stream, stream_length)
        # Relative to base_url, whose trailing slash keeps the root's path ("/api").
        url = path.lstrip("/")
        client = self._pool.acquire(self._pool_timeout_s)
        if client is None:
            raise HubTransportError(
                f"PoolTimeout: all {len(self._pool)} connections busy for "
                f"{self._pool_timeout_s:g}s",
                method=method,
                path=path,
            )
        try:
            with translate_errors(method, path, secret=self._secret):
                # Not a streamed response: its body is read (and the connection free) on return.
                request = self._build(
                    client, method, url, params=params, content=content, headers=headers
                )
                if send_before is not None:
                    request.extensions[SEND_BEFORE] = send_before
                resp = self._send(client, request)
        except SendDeadlinePassed as exc:
            raise HubNotSentError(str(exc), method=method, path=path) from None
        finally:
            self._pool.release(client)
        if not (allow_404 and resp.status_code == 404):
            raise_for_status(resp, method, path, secret=self._secret)
        return resp

    def _send(self, client: httpx.Client, request: httpx.Request) -> httpx.Response:
        """`client.send(request)`; over the pool's own transport, without httpx's redirect, auth
        and cookie plumbing (none of which acts on the hub's answers: redirects are not followed,
        auth is a header) unless the hub set a cookie. A sixth of the CPU per request."""
        direct: DirectTransport | None = self._pool.direct_transport(client)
        if direct is None or client.cookies:
            check_send_before(request)  # httpx's own transport: as late as this layer can
            return client.send(request)
        if client.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        resp = direct.handle_request(request)
        resp.read()  # decodes a Content-Encoding, as httpx does
        if "set-cookie" in resp.headers:
            client.cookies.extract_cookies(resp)
        return resp

    def _build(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        *,
        params: Params | None,
        content: bytes | Iterator[bytes] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Request:
        """`client.build_request(...)`, with the absolute URL built once per path. Cookies the
        hub set are merged by httpx itself (the rare path: the API sets none)."""
        if client.cookies:
            return client.build_request(
                method, url, params=params, content=content, headers=headers
            )
        absolute = self._urls.get(url)
        if absolute is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            absolute = self._urls[url] = client.build_request(method, url).url
        merged = client.headers.copy()
        if headers:
            merged.update(headers)
        return httpx.Request(
            method,
            absolute,
            params=params,
            headers=merged,
            content=content,
            extensions={"timeout": client.timeout.as_dict()},
        )


def _content(
    body: dict[str, Any] | None, stream: Iterator[bytes] | None, stream_length: int | None
) -> tuple[bytes | Iterator[bytes] | None, dict[str, str] | None]:
    """A request's content and its headers: `body` as JSON, or `stream` as octets."""
    if body is not None:
        return dump_body(body), {"Content-Type": "application/json"}
    if stream is None:
        return None, None
    if stream_length is None or stream_length < 0:
        raise ValueError("a streamed body needs its length")
    # Given explicitly, so httpx frames the body with it instead of chunked encoding.
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(stream_length)}
    return stream, headers
