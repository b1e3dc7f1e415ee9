"""`ConnectionPool`: the hub's keep-alive connections, one httpx.Client per connection, each lent
to one thread at a time; TLS verification is set up here.

Each client talks through a `DirectTransport` (`http.client`, ~6x less CPU per request than
httpcore), unless a proxy is set in the environment: then httpx's own transport, which applies
HTTP(S)_PROXY, ALL_PROXY and NO_PROXY exactly as httpx documents them.

Imports only `watcher.hub.transport`; only `watcher.hub.client` uses it.
"""

from __future__ import annotations

import queue
import ssl
from collections.abc import Mapping

import httpx

from watcher.hub.transport import DirectTransport, proxy_in_environment

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """`size` sync httpx.Clients of one keep-alive connection each, lent LIFO (so light traffic
    reuses one warm connection) to one thread at a time.

    Not a single httpx.Client shared by all threads, because httpcore 1.0.x's sync pool races when
    threads share it: one thread's pool upkeep reads another's connection as idle-and-readable (its
    response just arrived) and closes it mid-request (encode/httpcore#1110). Measured here, 8
    threads x 50 POSTs on one Client(max_connections=4): 2-3% failed with EBADF or hung until the
    read timeout, i.e. spurious HubAmbiguousErrors.
    """

    def __init__(
        self,
        *,
        size: int,
        base_url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        connect_timeout_s: float,
        ca_bundle: str | None,
        transport: httpx.BaseTransport | None,
    ) -> None:
        """Open nothing yet: connections are made on first use.

        Raises:
            OSError: `ca_bundle` cannot be read or holds no usable certificate (ssl.SSLError).
        """
        # Always verifying; a private CA replaces the default trust store rather than disabling
        # it. One context for all connections (loading a trust store takes ~20 ms).
        verify: ssl.SSLContext | bool = True  # unused by httpx when a transport is given
        if ca_bundle:
            verify = ssl.create_default_context(cafile=ca_bundle)
        elif transport is None:
            verify = httpx.create_ssl_context(trust_env=True)
        context = verify if isinstance(verify, ssl.SSLContext) else None
        direct = (
            transport is None
            and context is not None
            and not proxy_in_environment(httpx.URL(base_url).scheme)
        )
        transports = [
            DirectTransport(base_url, ssl_context=context) if direct else None for _ in range(size)
        ]
        self._clients = tuple(
            httpx.Client(
                # A trailing slash makes httpx append "v2/..." below the root's own path.
                base_url=base_url + "/",
                headers=dict(headers),
                timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                verify=verify,
                trust_env=True,  # proxies (HTTPS_PROXY, NO_PROXY, ...) as httpx reads them
                follow_redirects=False,
                transport=own or transport,
            )
            for own in transports
        )
        # Whether the connections go straight to the server (no proxy, no test transport), and
        # with which TLS context: what `LoopPoster` needs to talk to it the same way.
        self.direct = direct
        self.ssl_context = context
        self._direct = {
            id(client): own
            for client, own in zip(self._clients, transports, strict=True)
            if own is not None
        }
        self._idle: queue.LifoQueue[httpx.Client] = queue.LifoQueue()
        for client in reversed(self._clients):
            self._idle.put(client)

    def __len__(self) -> int:
        return len(self._clients)

    def __repr__(self) -> str:
        return f"ConnectionPool(size={len(self._clients)})"

    def acquire(self, timeout_s: float) -> httpx.Client | None:
        """An idle client for this thread alone, or None if none came back within `timeout_s`.
        Give it back with `release`."""
        try:
            return self._idle.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def direct_transport(self, client: httpx.Client) -> DirectTransport | None:
        """The `DirectTransport` under `client`, if it has one (no proxy, no test transport)."""
        return self._direct.get(id(client))

    def release(self, client: httpx.Client) -> None:
        """Return a client `acquire` lent out."""
        self._idle.put(client)

    def close(self) -> None:
        """Close every connection. Idempotent; a closed client raises RuntimeError when used."""
        for client in self._clients:
            client.close()
