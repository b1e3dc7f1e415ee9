"""HubClient over httpx.MockTransport: error mapping, token hygiene, headers, URLs, pagination."""

from __future__ import annotations

import email.utils
import json
import random
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import certifi
import httpx
import pytest

from watcher import __version__
from watcher.errors import TokenError
from watcher.hub.client import FileMetadata, HubClient, Run, encode_path, parse_retry_after
from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubRejectedError,
    HubResponseError,
    HubServerError,
    HubStatusError,
    HubTransportError,
)
from watcher.hub.policy import GiveUp, HoldAll, PauseHub, Reconcile, Reject, Retry, next_step

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
    return HubClient(token=TOKEN, transport=httpx.MockTransport(handler), **kwargs)


@pytest.fixture
def client_factory() -> Iterator[Callable[..., HubClient]]:
    made: list[HubClient] = []

    def factory(handler: Handler, **kwargs: Any) -> HubClient:
        client = make_client(handler, **kwargs)
        made.append(client)
        return client

    yield factory
    for c in made:
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


def assert_no_token(exc: BaseException) -> None:
    for e in chain(exc):
        assert TOKEN not in str(e), f"token in str({type(e).__name__})"
        assert TOKEN not in repr(e), f"token in repr({type(e).__name__})"
    assert TOKEN not in "".join(traceback.format_exception(exc))


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# --- status codes -----------------------------------------------------------------------------


def http_date(delta_s: float) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=delta_s), usegmt=True)


def test_every_status_maps_to_its_error_class(client_factory):
    """401/403 auth, 429 rate-limited (Retry-After seconds, date, absent), other 4xx rejected with
    the server's message, 5xx server (a POST's 504 is ambiguous); for POST, GET and HEAD."""
    # (status, headers, body, expected class, expected message, expected retry_after range)
    cases: list[tuple[int, dict[str, str], object, type[HubStatusError], str, Any]] = [
        (401, {}, {"message": "token expired"}, HubAuthError, "token expired", None),
        (403, {}, {"message": "no access to ws"}, HubAuthError, "no access to ws", None),
        (
            429,
            {"Retry-After": "7"},
            {"message": "slow down"},
            HubRateLimitedError,
            "slow down",
            (7.0, 7.0),
        ),
        (429, {"Retry-After": "2.5"}, None, HubRateLimitedError, "Too Many Requests", (2.5, 2.5)),
        (
            429,
            {"Retry-After": http_date(120)},
            None,
            HubRateLimitedError,
            "Too Many Requests",
            (110.0, 120.0),
        ),
        (
            429,
            {"Retry-After": http_date(-60)},
            None,
            HubRateLimitedError,
            "Too Many Requests",
            (0.0, 0.0),
        ),
        (429, {}, {"message": "limit"}, HubRateLimitedError, "limit", None),
        (429, {"Retry-After": "soon"}, None, HubRateLimitedError, "Too Many Requests", None),
        (
            400,
            {},
            {"message": "one of input_dir or batch_id is required"},
            HubRejectedError,
            "one of input_dir or batch_id is required",
            None,
        ),
        (
            404,
            {},
            {"message": "deployment not found"},
            HubRejectedError,
            "deployment not found",
            None,
        ),
        (409, {}, {"message": "conflict"}, HubRejectedError, "conflict", None),
        (422, {}, {"message": "bad settings"}, HubRejectedError, "bad settings", None),
        (400, {}, "<html>oops</html>", HubRejectedError, "Bad Request", None),
        (400, {}, {"msg": "not the spec field"}, HubRejectedError, "Bad Request", None),
        (
            307,
            {"Location": "https://login.example/"},
            None,
            HubRejectedError,
            "unexpected redirect to https://login.example/",
            None,
        ),
        (408, {}, None, HubServerError, "Request Timeout", None),
        (500, {}, {"message": "boom"}, HubServerError, "boom", None),
        (502, {}, "<html>bad gateway</html>", HubServerError, "Bad Gateway", None),
        (503, {}, {"message": "maintenance"}, HubServerError, "maintenance", None),
        (504, {}, None, HubServerError, "Gateway Timeout", None),  # POST: ambiguous, below
    ]
    for status, headers, body, cls, message, retry_range in cases:

        def handler(request: httpx.Request, status=status, headers=headers, body=body):
            if isinstance(body, str):
                return httpx.Response(status, text=body, headers=headers)
            if body is None:
                return httpx.Response(status, headers=headers)
            return json_response(status, body, **headers)

        client = client_factory(handler)
        for which, (_, path) in CALLS.items():
            if which == "HEAD" and status == 404:
                continue  # HEAD 404 means "nothing there" (tested below)
            err = call_and_catch(client, which)
            if which == "POST" and status == 504:
                # The gateway gave up on the origin, which may have created the run.
                assert type(err) is HubAmbiguousError
                assert (
                    str(err)
                    == f"POST {path}: HTTP 504: Gateway Timeout; the request may have taken effect"
                )
                continue
            where = f"{which} HTTP {status}"
            assert type(err) is cls, where
            assert err.http_status == status, where
            assert err.method == which.split()[0], where
            assert err.path == path, where
            if which != "HEAD":  # a HEAD answer has no body: the reason phrase stands in
                assert err.message == message, where
            assert str(err) == f"{err.method} {path}: HTTP {status}: {err.message}", where
            if cls is HubRateLimitedError:
                assert isinstance(err, HubRateLimitedError)
                if retry_range is None:
                    assert err.retry_after_s is None, where
                else:
                    assert retry_range[0] <= err.retry_after_s <= retry_range[1], where
            assert_no_token(err)


def test_head_404_is_none_and_other_2xx_heads_parse(client_factory):
    """file_metadata: 404 -> None; a JSON content type is a folder; a file has size and mtime."""
    answers = {
        "/api/v2/files/missing": httpx.Response(404),
        "/api/v2/files/folder": httpx.Response(200, headers={"Content-Type": "application/json"}),
        "/api/v2/files/folder/f.pdf": httpx.Response(
            200,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": "1234",
                "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT",
            },
        ),
    }
    client = client_factory(lambda r: answers[r.url.path])
    assert client.file_metadata("missing") is None
    assert client.file_metadata("folder/") == FileMetadata(
        path="folder/", is_folder=True, size=None, last_modified=None
    )
    assert client.file_metadata("folder/f.pdf") == FileMetadata(
        path="folder/f.pdf",
        is_folder=False,
        size=1234,
        last_modified="Wed, 01 Jan 2025 00:00:00 GMT",
    )


# --- httpx exceptions -------------------------------------------------------------------------

T, A = HubTransportError, HubAmbiguousError
# What a POST's failure means. GET/HEAD are safe to repeat: always HubTransportError.
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


def httpx_exception_classes() -> set[type[Exception]]:
    """Every exception class httpx exports, except StreamError's (RuntimeErrors of misuse)."""
    found: set[type[Exception]] = set()
    for name in httpx.__all__:
        obj = getattr(httpx, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and not issubclass(obj, httpx.StreamError)
        ):
            found.add(obj)
    return found


def make_exception(cls: type[Exception], request: httpx.Request) -> Exception:
    if cls is httpx.HTTPStatusError:
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    return cls("boom")


def test_table_classifies_every_httpx_exception():
    """A new httpx exception class must be classified here before the mapping test can pass."""
    assert httpx_exception_classes() == set(POST_EXPECTED)


def test_every_httpx_exception_maps_and_none_escapes(client_factory):
    """POST: connect-phase failures are transport errors, anything after sending is ambiguous;
    GET/HEAD: every failure is a transport error. No httpx exception escapes."""
    for cls, post_expected in POST_EXPECTED.items():

        def handler(request: httpx.Request, cls=cls):
            raise make_exception(cls, request)

        client = client_factory(handler)
        for which, (_, path) in CALLS.items():
            expected = post_expected if which == "POST" else HubTransportError
            err = call_and_catch(client, which)
            assert type(err) is expected, f"{which} {cls.__name__} -> {type(err).__name__}"
            assert err.path == path
            assert isinstance(err.__cause__, cls), "the httpx exception is kept as the cause"
            assert cls.__name__ in str(err)
            assert_no_token(err)


def test_real_undecodable_body_is_ambiguous_for_post(client_factory):
    """A gzip-labelled body that is not gzip: POST ambiguous (answered, unknown), GET transport."""
    client = client_factory(
        lambda r: httpx.Response(202, headers={"Content-Encoding": "gzip"}, content=b"not gzip")
    )
    assert type(call_and_catch(client, "POST")) is HubAmbiguousError
    assert type(call_and_catch(client, "GET run")) is HubTransportError


def test_exception_text_with_the_token_is_scrubbed_and_unchained(client_factory):
    """An httpx message that quotes the token is scrubbed, and the original is not chained."""

    def handler(request: httpx.Request):
        raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'")

    client = client_factory(handler)
    for which in CALLS:
        err = call_and_catch(client, which)
        assert "***" in str(err)
        assert err.__cause__ is None
        assert_no_token(err)


def test_server_message_echoing_the_token_is_scrubbed(client_factory):
    """A server error message that repeats the token does not carry it into our exception."""
    client = client_factory(lambda r: json_response(401, {"message": f"bad token {TOKEN}"}))
    err = call_and_catch(client, "GET run")
    assert isinstance(err, HubAuthError)
    assert err.message == "bad token ***"
    assert_no_token(err)


# --- 2xx bodies -------------------------------------------------------------------------------


def test_2xx_with_a_non_run_body_is_a_response_error(client_factory):
    """Run endpoints answering 2xx with something that is not a spec `run` -> HubResponseError."""
    bad_bodies: list[httpx.Response] = [
        httpx.Response(202, text="not json"),
        httpx.Response(204),
        json_response(202, ["r-1"]),
        json_response(202, {"status": "RUNNING"}),
        json_response(202, {"id": "", "status": "RUNNING"}),
        json_response(202, {"id": 7, "status": "RUNNING"}),
        json_response(202, {"id": "r", "status": None}),
        json_response(202, {**RUN_BODY, "start_timestamp": "yesterday"}),
        json_response(202, {**RUN_BODY, "batch_id": True}),
        json_response(202, {**RUN_BODY, "input_dir": 5}),
        json_response(202, {**RUN_BODY, "tags": "t1"}),
        json_response(202, {**RUN_BODY, "tags": [1]}),
    ]
    for resp in bad_bodies:
        client = client_factory(lambda r, resp=resp: resp)
        for which in ("POST", "GET run"):
            err = call_and_catch(client, which)
            assert type(err) is HubResponseError, (which, resp.content)
            assert_no_token(err)
    for listing in (
        json_response(200, []),
        json_response(200, {"runs": {}}),
        json_response(200, {"runs": [{"id": "x"}]}),
    ):
        client = client_factory(lambda r, listing=listing: listing)
        assert type(call_and_catch(client, "GET list")) is HubResponseError


def test_run_keeps_unknown_fields_and_accepts_int64_strings(client_factory):
    """Unknown response fields land in Run.extra (read-only); int64 sent as strings are ints."""
    body = {
        **RUN_BODY,
        "start_timestamp": "1700000000000000000",
        "output_workspace": "ws",
        "nested": {"a": [1, 2]},
    }
    client = client_factory(lambda r: json_response(200, body))
    run = client.get_run("r-1")
    assert run.start_timestamp == 1_700_000_000_000_000_000
    assert run.tags == ("t1",)
    assert dict(run.extra) == {"output_workspace": "ws", "nested": {"a": [1, 2]}}
    with pytest.raises(TypeError):
        run.extra["x"] = 1
    assert run.to_json()["output_workspace"] == "ws"
    assert run.log_fields() == {
        "id": "r-1",
        "status": "RUNNING",
        "start_timestamp": 1_700_000_000_000_000_000,
        "input_dir": "acme/ws/fs/Drive/in/a",
        "app_id": "app-1",
        "deployment_id": "dep-1",
        "tags": ["t1"],
    }
    json.dumps(run.log_fields())  # the pipeline stores it as JSON text


def test_list_without_runs_key_is_empty(client_factory):
    """A listing that omits `runs` (or sends null) is an empty page, not an error."""
    for body in ({}, {"runs": None}):
        client = client_factory(lambda r, body=body: json_response(200, body))
        assert client.list_runs() == []


# --- token, headers, URLs ---------------------------------------------------------------------


def test_token_is_not_in_repr_or_str():
    """repr/str of the client show base_url and context only."""
    client = make_client(lambda r: httpx.Response(200), context="acme")
    try:
        assert repr(client) == "HubClient(base_url='https://hub.example/api', context='acme')"
        assert TOKEN not in str(client)
        assert TOKEN not in repr(client._clients)
    finally:
        client.close()


def test_unsendable_token_is_refused_without_echoing_it():
    """An empty token or one with control characters is a TokenError that does not quote it."""
    for bad in ("", "abc\ndef", " padded ", "tök"):
        with pytest.raises(TokenError) as info:
            HubClient(base_url=BASE, token=bad)
        if bad.strip():
            assert bad.strip() not in str(info.value)


def test_headers_are_sent(client_factory):
    """Authorization Bearer, User-Agent aihub-watcher/<version>, IB-Context only when configured."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request):
        seen.append(request)
        return json_response(200, RUN_BODY)

    client_factory(handler, context="acme_org").get_run("r-1")
    client_factory(handler).get_run("r-1")
    client_factory(handler, context="").get_run("r-1")
    with_ctx, without, empty = seen
    for r in seen:
        assert r.headers["authorization"] == f"Bearer {TOKEN}"
        assert r.headers["user-agent"] == f"aihub-watcher/{__version__}"
        assert r.headers["accept"] == "application/json"
    assert with_ctx.headers["ib-context"] == "acme_org"
    assert "ib-context" not in without.headers
    assert "ib-context" not in empty.headers


def test_post_sends_json(client_factory):
    """run_deployment POSTs a compact JSON body with a JSON content type to the deployment path."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request):
        seen.append(request)
        return json_response(202, RUN_BODY)

    run = client_factory(handler).run_deployment(
        deployment_id="dep 1/x",
        input_dir="acme/ws/fs/Drive/in/ä",
        settings=MappingProxyType({"tags": ("a", "b"), "keys": MappingProxyType({"custom": {}})}),
    )
    assert run.id == "r-1"
    (req,) = seen
    assert req.method == "POST"
    assert req.url.raw_path == b"/api/v2/apps/deployments/dep%201%2Fx/runs"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {
        "input_dir": "acme/ws/fs/Drive/in/ä",
        "settings": {"tags": ["a", "b"], "keys": {"custom": {}}},
    }


@pytest.mark.parametrize(
    "base_url", ["https://hub.example/api", "https://hub.example/api/", "https://hub.example/api//"]
)
def test_base_url_root_path_is_kept_without_double_slash(client_factory, base_url):
    """/v2/... is appended below the API root's own path, with no '//'."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request):
        seen.append(request)
        return json_response(200, RUN_BODY)

    client = client_factory(handler, base_url=base_url)
    client.get_run("r-1")
    assert str(seen[0].url) == "https://hub.example/api/v2/apps/runs/r-1"
    assert client.base_url == "https://hub.example/api"


def test_base_url_without_path(client_factory):
    """A host-only base_url yields /v2/... at the root."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request):
        seen.append(request)
        return json_response(200, RUN_BODY)

    client = client_factory(handler, base_url="http://127.0.0.1:9")
    client.get_run("r-1")
    assert seen[0].url.raw_path == b"/v2/apps/runs/r-1"


def test_bad_constructor_arguments():
    """Non-http URLs, queries, non-positive limits and unreadable CA bundles fail at once."""
    for url in ("ftp://hub.example/api", "hub.example/api", "https://hub.example/api?x=1"):
        with pytest.raises(ValueError):
            HubClient(base_url=url, token=TOKEN)
    with pytest.raises(ValueError):
        HubClient(base_url=BASE, token=TOKEN, timeout_s=0)
    with pytest.raises(ValueError):
        HubClient(base_url=BASE, token=TOKEN, max_connections=0)
    with pytest.raises(OSError):
        HubClient(base_url=BASE, token=TOKEN, ca_bundle="/nonexistent/ca.pem")


def test_ca_bundle_builds_a_verifying_context(tmp_path):
    """A CA bundle file replaces the trust store; verification stays on."""
    client = HubClient(base_url=BASE, token=TOKEN, ca_bundle=certifi.where())
    client.close()
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ssl.SSLError):
        HubClient(base_url=BASE, token=TOKEN, ca_bundle=str(not_pem))


def test_file_path_segments_are_percent_encoded(client_factory):
    """Spaces, unicode, '#', '?', '%' are encoded per segment; '/' separators are kept."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request):
        seen.append(request)
        return httpx.Response(404)

    path = "acme/My Workspace/fs/Instabase Drive/a b#c?d%e&f+g/naïve 日本.pdf"
    assert client_factory(handler).file_metadata(path) is None
    req = seen[0]
    assert req.method == "HEAD"
    assert req.url.raw_path == (
        b"/api/v2/files/acme/My%20Workspace/fs/Instabase%20Drive/a%20b%23c%3Fd%25e%26f%2Bg/"
        b"na%C3%AFve%20%E6%97%A5%E6%9C%AC.pdf"
    )
    assert req.url.query == b""
    assert req.url.path == "/api/v2/files/" + path  # decodes back to exactly the input
    assert encode_path("/lead/and/trail/") == "lead/and/trail"
    for bad in ("", "/", "a/../b", "./a"):
        with pytest.raises(ValueError):
            encode_path(bad)


def test_list_runs_query_params(client_factory):
    """Filters become query params: status repeated, timestamps in Unix seconds."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request):
        seen.append(request)
        return json_response(200, {"runs": [RUN_BODY]})

    client = client_factory(handler)
    runs = client.list_runs(
        deployment_id="dep-1",
        status=["RUNNING", "COMPLETE"],
        from_timestamp=1_700_000_000,
        to_timestamp=1_700_003_600,
        limit=50,
        offset=100,
        sort_by="start_timestamp",
        order="DESCENDING",
    )
    assert [r.id for r in runs] == ["r-1"]
    assert seen[0].url.path == "/api/v2/apps/runs"
    assert seen[0].url.params.multi_items() == [
        ("deployment_id", "dep-1"),
        ("status", "RUNNING"),
        ("status", "COMPLETE"),
        ("from_timestamp", "1700000000"),
        ("to_timestamp", "1700003600"),
        ("limit", "50"),
        ("offset", "100"),
        ("sort_by", "start_timestamp"),
        ("order", "DESCENDING"),
    ]
    client.list_runs(status="FAILED")
    assert seen[1].url.params.multi_items() == [("status", "FAILED")]
    client.list_runs()
    assert seen[2].url.query == b""


def test_list_runs_refuses_ns_timestamps_and_unknown_choices():
    """A ns/ms timestamp or a sort/order outside the spec enum is a bug, caught before sending."""
    client = make_client(lambda r: pytest.fail("must not send"))
    try:
        with pytest.raises(ValueError, match="seconds"):
            client.list_runs(from_timestamp=time.time_ns())
        with pytest.raises(ValueError):
            client.list_runs(sort_by="finish_timestamp")
        with pytest.raises(ValueError):
            client.list_runs(order="asc")
    finally:
        client.close()


def test_iter_runs_pages_until_a_short_page(client_factory):
    """iter_runs walks limit/offset pages and stops after the first short page."""
    all_runs = [{**RUN_BODY, "id": f"r-{i}"} for i in range(7)]
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request):
        seen.append(request.url.params)
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        return json_response(200, {"runs": all_runs[offset : offset + limit]})

    runs = list(client_factory(handler).iter_runs(page_size=3, deployment_id="dep-1"))
    assert [r.id for r in runs] == [f"r-{i}" for i in range(7)]
    assert [(p["offset"], p["limit"]) for p in seen] == [("0", "3"), ("3", "3"), ("6", "3")]
    assert all(p["deployment_id"] == "dep-1" for p in seen)

    seen.clear()
    all_runs = all_runs[:6]  # an exact multiple: one extra, empty page ends it
    assert len(list(client_factory(handler).iter_runs(page_size=3))) == 6
    assert len(seen) == 3


def test_iter_runs_stops_when_the_server_ignores_offset(client_factory):
    """A server that always returns the same full page cannot make iter_runs loop forever."""
    page = {"runs": [{**RUN_BODY, "id": f"r-{i}"} for i in range(2)]}
    calls: list[int] = []

    def handler(request: httpx.Request):
        calls.append(1)
        return json_response(200, page)

    assert [r.id for r in client_factory(handler).iter_runs(page_size=2)] == ["r-0", "r-1"]
    assert len(calls) == 2


def test_client_is_shared_safely_between_threads(client_factory):
    """Many worker threads using one client each get their own, correct answers."""

    def handler(request: httpx.Request):
        run_id = request.url.path.rsplit("/", 1)[-1]
        return json_response(200, {**RUN_BODY, "id": run_id})

    client = client_factory(handler)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                assert client.get_run(f"r-{n}-{i}").id == f"r-{n}-{i}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_busy_pool_times_out_as_a_transport_error(client_factory):
    """With every connection lent out for longer than the timeout, a call fails as transport
    (nothing was sent), even a POST; the pool works again once a connection comes back."""
    entered, release = threading.Event(), threading.Event()

    def handler(request: httpx.Request):
        if request.url.path.endswith("/slow"):
            entered.set()
            release.wait(10)
        return json_response(200, {**RUN_BODY, "id": request.url.path.rsplit("/", 1)[-1]})

    client = client_factory(handler, max_connections=1, timeout_s=0.2)
    holder = threading.Thread(target=client.get_run, args=("slow",))
    holder.start()
    try:
        assert entered.wait(5)
        err = call_and_catch(client, "POST")
        assert type(err) is HubTransportError
        assert "PoolTimeout" in str(err)
    finally:
        release.set()
        holder.join()
    assert client.get_run("r-2").id == "r-2"


def test_closed_client_is_a_bug_not_a_hub_error():
    """Calling a closed client raises RuntimeError (misuse), not a HubError."""
    client = make_client(lambda r: json_response(200, RUN_BODY))
    client.close()
    client.close()  # idempotent
    with pytest.raises(RuntimeError) as info:
        client.get_run("r-1")
    assert not isinstance(info.value, HubError)


# --- Retry-After and next_step ----------------------------------------------------------------


def test_parse_retry_after():
    """Seconds (int or float) or an HTTP date relative to now; never negative; junk is None."""
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:01:30 -0000", now=now) == 90.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    for junk in (None, "", "soon", "nan", "inf", "Wed, 99 Foo"):
        assert parse_retry_after(junk, now=now) is None


def error_from(status: int, **headers: str) -> HubError:
    client = make_client(lambda r: json_response(status, {"message": f"m{status}"}, **headers))
    try:
        return call_and_catch(client, "POST")
    finally:
        client.close()


def exception_error(cls: type[Exception]) -> HubError:
    def handler(request: httpx.Request):
        raise cls("boom", request=request)  # type: ignore[call-arg]

    client = make_client(handler)
    try:
        return call_and_catch(client, "POST")
    finally:
        client.close()


def test_next_step_for_each_client_error():
    """Errors the client raises drive the right next step; max_attempts gives up on retryables."""
    rng = random.Random(3)
    auth, rejected = error_from(401), error_from(422)
    limited, limited_date = (
        error_from(429, **{"Retry-After": "7"}),
        error_from(429, **{"Retry-After": http_date(60)}),
    )
    limited_bare, server = error_from(429), error_from(503)
    ambiguous = exception_error(httpx.ReadTimeout)
    transport = exception_error(httpx.ConnectError)
    client = make_client(lambda r: json_response(202, {"id": 1}))
    try:
        response = call_and_catch(client, "POST")
    finally:
        client.close()

    def step(err: HubError, attempt: int = 1, **kw):
        return next_step(err, attempt=attempt, max_attempts=5, **kw)

    assert step(auth) == PauseHub()
    assert step(rejected) == Reject("m422")
    assert step(ambiguous) == Reconcile()
    assert step(response) == Reconcile()
    assert step(limited) == HoldAll(7.0)
    held = step(limited_date)
    assert isinstance(held, HoldAll) and 50 <= held.delay_s <= 60
    assert isinstance(step(limited_bare), HoldAll)
    for err in (server, transport):
        retry = step(err, 3, rng=rng)
        assert isinstance(retry, Retry) and 0.5 <= retry.delay_s <= 4.0, err
        assert isinstance(step(err, 5), GiveUp), err
    # Throttling, auth, rejection and ambiguity are not counted against max_attempts.
    assert step(limited, 9) == HoldAll(7.0)
    assert step(auth, 9) == PauseHub()
    assert step(ambiguous, 9) == Reconcile()


def test_run_from_json_direct():
    """Run.from_json builds from a dict and names method/path in its error."""
    run = Run.from_json(RUN_BODY, method="GET", path="/v2/apps/runs/r-1")
    assert run.deployment_id == "dep-1" and run.extra == {}
    with pytest.raises(HubResponseError) as info:
        Run.from_json(None, method="GET", path="/v2/apps/runs/x")
    assert str(info.value).startswith("GET /v2/apps/runs/x: response is not a run")
