"""HubClient over httpx.MockTransport: a client factory, the calls by HTTP method, token checks,
what each httpx exception must become, and a transport that leaves request bodies unread."""

from __future__ import annotations

import email.utils
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from watcher.hub.client import HubClient
from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubRejectedError,
    HubServerError,
    HubTransportError,
)

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


class StreamingTransport(httpx.BaseTransport):
    """Like httpx.MockTransport, but hands the handler the request with its body unread, so the
    handler can pull a streamed body chunk by chunk, as a socket would (MockTransport joins it)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.handler(request)


def make_client(handler: Handler, *, streaming: bool = False, **kwargs: Any) -> HubClient:
    kwargs.setdefault("base_url", BASE)
    kwargs.setdefault("max_connections", 2)
    kwargs.setdefault("token", TOKEN)
    transport = StreamingTransport(handler) if streaming else httpx.MockTransport(handler)
    return HubClient(transport=transport, **kwargs)


class ClientFactory:
    """`make_client` that closes every client it made on exit (a test module's fixture)."""

    def __init__(self) -> None:
        self._made: list[HubClient] = []

    def __call__(self, handler: Handler, *, streaming: bool = False, **kwargs: Any) -> HubClient:
        client = make_client(handler, streaming=streaming, **kwargs)
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
    return catch(lambda: fn(client), which)


def catch(fn: Callable[[], object], what: str) -> HubError:
    """Run `fn`; it must raise a HubError (anything else, httpx's included, fails the test)."""
    try:
        fn()
    except HubError as exc:
        return exc
    pytest.fail(f"{what}: no error raised")


T, A = HubTransportError, HubAmbiguousError
# What a POST's failure means. GET/HEAD/PUT/DELETE repeat safely: always HubTransportError.
POST_EXPECTED: dict[type[Exception], type[HubError]] = {
    # nothing can have reached the server
    httpx.ConnectError: T,
    httpx.ConnectTimeout: T,
    httpx.PoolTimeout: T,
    httpx.ProxyError: T,
    httpx.UnsupportedProtocol: T,
    httpx.LocalProtocolError: T,
    httpx.InvalidURL: T,
    # sent (or partly sent): the run may exist
    httpx.ReadTimeout: A,
    httpx.WriteTimeout: A,
    httpx.ReadError: A,
    httpx.WriteError: A,
    httpx.CloseError: A,
    httpx.RemoteProtocolError: A,
    httpx.DecodingError: A,
    httpx.TooManyRedirects: A,
    httpx.HTTPStatusError: A,
    httpx.CookieConflict: A,
    # generic bases: unknown phase, so the cautious answer
    httpx.HTTPError: A,
    httpx.RequestError: A,
    httpx.TransportError: A,
    httpx.TimeoutException: A,
    httpx.NetworkError: A,
    httpx.ProtocolError: A,
}


def make_exception(cls: type[Exception], request: httpx.Request) -> Exception:
    if cls is httpx.HTTPStatusError:
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    return cls("boom")


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


def expected_status_error(status: int, method: str) -> type[HubError] | None:
    """The class a status must become, stated as the policy needs it (None: not an error)."""
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return HubAuthError
    if status == 429:
        return HubRateLimitedError
    if status == 504 and method == "POST":
        return HubAmbiguousError  # the gateway gave up; the origin may have created the run
    if status >= 500 or status == 408:
        return HubServerError
    return HubRejectedError  # every other 1xx, 3xx and 4xx
