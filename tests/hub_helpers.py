"""HubClient over httpx.MockTransport: a client factory, the calls by HTTP method, token checks."""

from __future__ import annotations

import email.utils
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from watcher.hub.client import HubClient
from watcher.hub.errors import HubError

TOKEN = "tok-S3CRET-0123456789abcdef"
BASE = "https://hub.example/api"
RUN_BODY: dict[str, Any] = {
    "id": "r-1",
    "status": "RUNNING",
    "start_timestamp": 1_700_000_000_000_000_000,
    "finish_timestamp": None,
    "msg": None,
    "batch_id": None,
    "input_dir": "acme/ws/fs/Drive/in/a",
    "app_id": "app-1",
    "deployment_id": "dep-1",
    "tags": ["t1"],
}

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, **kwargs: Any) -> HubClient:
    kwargs.setdefault("base_url", BASE)
    kwargs.setdefault("max_connections", 2)
    kwargs.setdefault("token", TOKEN)
    return HubClient(transport=httpx.MockTransport(handler), **kwargs)


class ClientFactory:
    """`make_client` that closes every client it made on exit (a test module's fixture)."""

    def __init__(self) -> None:
        self._made: list[HubClient] = []

    def __call__(self, handler: Handler, **kwargs: Any) -> HubClient:
        client = make_client(handler, **kwargs)
        self._made.append(client)
        return client

    def __enter__(self) -> ClientFactory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for c in self._made:
            c.close()


# The calls under test, by the HTTP method they use; each returns the error path it requests.
CALLS: dict[str, tuple[Callable[[HubClient], object], str]] = {
    "POST": (
        lambda c: c.run_deployment(deployment_id="dep-1", input_dir="acme/in/a"),
        "/v2/apps/deployments/dep-1/runs",
    ),
    "GET run": (lambda c: c.get_run("r-1"), "/v2/apps/runs/r-1"),
    "GET list": (lambda c: c.list_runs(deployment_id="dep-1"), "/v2/apps/runs"),
    "HEAD": (lambda c: c.file_metadata("acme/in/a"), "/v2/files/acme/in/a"),
}


def call_and_catch(client: HubClient, which: str) -> HubError:
    """Run one call; it must raise a HubError (anything else, httpx's included, fails the test)."""
    fn, _ = CALLS[which]
    try:
        fn(client)
    except HubError as exc:
        return exc
    pytest.fail(f"{which}: no error raised")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what a traceback would print of its chain."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        if seen.__cause__ is not None:
            seen = seen.__cause__
        elif seen.__context__ is not None and not seen.__suppress_context__:
            seen = seen.__context__
        else:
            seen = None


def assert_no_token(exc: BaseException, token: str = TOKEN) -> None:
    for e in chain(exc):
        assert token not in str(e), f"token in str({type(e).__name__})"
        assert token not in repr(e), f"token in repr({type(e).__name__})"
    assert token not in "".join(traceback.format_exception(exc))


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def http_date(delta_s: float) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=delta_s), usegmt=True)
