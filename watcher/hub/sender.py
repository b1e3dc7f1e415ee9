"""`Sender`: one request through the connection pool and the one translator; the plumbing that
`HubClient` and `BatchClient` share, so both lend the same connections and raise the same errors.

Imports only the core and `watcher.hub`; never config, ledger or pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from watcher.hub.errors import HubTransportError
from watcher.hub.pool import ConnectionPool
from watcher.hub.translate import raise_for_status, translate_errors
from watcher.hub.wire import Params, dump_body

__all__ = ["Sender"]


class Sender:
    """Sends requests with a connection borrowed from `pool` for the call's duration only.

    Holds the token only to scrub it from error text; its repr shows nothing of it.
    """

    def __init__(self, pool: ConnectionPool, *, secret: str, pool_timeout_s: float) -> None:
        self._pool = pool
        self._secret = secret
        self._pool_timeout_s = pool_timeout_s

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
    ) -> httpx.Response:
        """Send one request; the whole response is read when this returns. `body` is sent as
        JSON; `stream` as application/octet-stream of exactly `stream_length` bytes, pulled one
        chunk at a time while the connection writes (never joined in memory).

        Raises:
            HubError subclasses (see watcher.hub.errors); whatever `stream` raises, unchanged.
        """
        content: bytes | Iterator[bytes] | None = None
        headers: dict[str, str] | None = None
        if body is not None:
            content = dump_body(body)
            headers = {"Content-Type": "application/json"}
        elif stream is not None:
            if stream_length is None or stream_length < 0:
                raise ValueError("a streamed body needs its length")
            content = stream
            # Given explicitly, so httpx frames the body with it instead of chunked encoding.
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(stream_length),
            }
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
                resp = client.request(method, url, params=params, content=content, headers=headers)
        finally:
            self._pool.release(client)
        if not (allow_404 and resp.status_code == 404):
            raise_for_status(resp, method, path, secret=self._secret)
        return resp
