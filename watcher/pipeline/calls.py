"""Blocking hub calls from the loop: the thread pool, the current client and retired clients.

HTTP runs on a small pool with httpx's sync client (measured faster here than its AsyncClient);
a run's POST, the call of every drop, goes on the loop itself when it can (`post_run`).
A client replaced by a new token is closed as soon as its last call returns. Imports only the
hub adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from watcher.hub.client import HubClient
from watcher.hub.loop_post import LoopPoster

T = TypeVar("T")

# Threads beyond max_concurrency, so polling run statuses never starves submissions.
EXTRA_WORKERS = 2


class HubCalls:
    """Runs requests on worker threads, each with the client that is current when it starts."""

    def __init__(self, client: HubClient, *, max_concurrency: int) -> None:
        self._client = client
        # Calls in flight per client (by identity); a retired client closes when it hits 0.
        self._inflight: dict[int, int] = {}
        self._retired: dict[int, HubClient] = {}
        self._pool = self._new_pool(max_concurrency)

    @staticmethod
    def _new_pool(max_concurrency: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=max_concurrency + EXTRA_WORKERS, thread_name_prefix="aihub-http"
        )

    async def call(self, request: Callable[[HubClient], T]) -> T:
        """`request(client)` on a worker thread, e.g. `call(lambda c: c.get_run(run_id))`."""
        with self._using() as client:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, request, client)

    @property
    def posts_on_loop(self) -> bool:
        """True when run POSTs go on the loop (`post_run`): the current client talks to the
        server directly (no proxy, no test transport)."""
        return self._client.loop_poster is not None

    async def post_run(self, request: Callable[[LoopPoster], Awaitable[T]]) -> T:
        """`request(poster)` awaited on the loop, with the current client's `LoopPoster` (only
        when `posts_on_loop`); the client is kept open until it returns, as for `call`."""
        with self._using() as client:
            poster = client.loop_poster
            if poster is None:
                raise RuntimeError("post_run needs a client with a loop poster (posts_on_loop)")
            return await request(poster)

    @contextlib.contextmanager
    def _using(self) -> Iterator[HubClient]:
        """The current client, counted in flight for the block: a retired one closes when its
        last call ends."""
        client = self._client
        key = id(client)
        self._inflight[key] = self._inflight.get(key, 0) + 1
        try:
            yield client
        finally:
            self._inflight[key] -= 1
            if not self._inflight[key]:
                del self._inflight[key]
                self._close_if_retired(key)

    def replace_client(self, client: HubClient) -> None:
        """Use `client` from now on; the old one closes once its calls in flight are done."""
        old = self._client
        self._client = client
        self._retired[id(old)] = old
        self._close_if_retired(id(old))

    def _close_if_retired(self, key: int) -> None:
        if key in self._retired and key not in self._inflight:
            self._retired.pop(key).close()

    @property
    def retired_open(self) -> int:
        """Replaced clients still serving calls (0 once they are all closed)."""
        return len(self._retired)

    def resize(self, max_concurrency: int) -> None:
        """A new pool for a new max_concurrency; calls already running finish on the old one."""
        old, self._pool = self._pool, self._new_pool(max_concurrency)
        old.shutdown(wait=False)

    def shutdown(self) -> None:
        """Stop taking calls; queued ones are cancelled, running ones are not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def join(self) -> None:
        """Stop taking calls and block until the running ones have returned."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        for client in [*self._retired.values(), self._client]:
            client.close()
        self._retired.clear()
