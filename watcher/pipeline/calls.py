"""Blocking hub calls from the loop: the thread pool, the current client and retired clients.

HTTP runs on a small pool with httpx's sync client (measured faster here than its AsyncClient).
Imports only the hub adapter.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from watcher.hub.client import HubClient

T = TypeVar("T")

# Threads beyond max_concurrency, so polling run statuses never starves submissions.
EXTRA_WORKERS = 2


class HubCalls:
    """Runs `HubClient` methods on worker threads; swaps clients on token or hub changes."""

    def __init__(self, client: HubClient, *, max_concurrency: int) -> None:
        self._client = client
        self._retired: list[HubClient] = []
        self._pool = self._new_pool(max_concurrency)

    @staticmethod
    def _new_pool(max_concurrency: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=max_concurrency + EXTRA_WORKERS, thread_name_prefix="aihub-http"
        )

    @property
    def client(self) -> HubClient:
        return self._client

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a worker thread. `fn` is usually a bound client method."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def replace_client(self, client: HubClient) -> None:
        """Use `client` from now on. The old one may still serve in-flight calls: it is closed
        at shutdown."""
        self._retired.append(self._client)
        self._client = client

    def resize(self, max_concurrency: int) -> None:
        """A new pool for a new max_concurrency; calls already running finish on the old one."""
        old, self._pool = self._pool, self._new_pool(max_concurrency)
        old.shutdown(wait=False)

    def shutdown(self) -> None:
        """Stop taking calls; queued ones are cancelled, running ones are not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for client in [*self._retired, self._client]:
            client.close()
