"""The one translator: every status and every httpx exception becomes the right HubError, the
token never shows in one, and nothing else escapes HubClient (over httpx.MockTransport)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.hub_helpers import (
    BASE,
    CALLS,
    POST_EXPECTED,
    RUN_BODY,
    TOKEN,
    ClientFactory,
    assert_no_token,
    call_and_catch,
    expected_status_error,
    http_date,
    json_response,
    make_client,
    make_exception,
)
from watcher.errors import TokenError
from watcher.hub.client import HubClient
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
from watcher.hub.models import FileMetadata
from watcher.redact import MIN_SECRET_LENGTH


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


# --- status codes ---------------------------------------------------------------------------------


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


def test_every_status_code_from_100_to_599_maps(client_factory):
    """Each status a server can send becomes exactly its HubError class for POST, GET and HEAD,
    and every 2xx passes (HEAD's 404 is "nothing there"): no status is left unmapped."""
    for status in range(100, 600):
        client = client_factory(lambda r, status=status: json_response(status, RUN_BODY))
        for which, (fn, path) in CALLS.items():
            method = which.split()[0]
            expected = expected_status_error(status, method)
            if expected is None or (which == "HEAD" and status == 404):
                fn(client)  # a 2xx (or HEAD 404) is not an error
                continue
            err = call_and_catch(client, which)
            where = f"{which} HTTP {status}"
            assert type(err) is expected, f"{where} -> {type(err).__name__}"
            assert (err.method, err.path) == (method, path), where
            if isinstance(err, HubStatusError):
                assert err.http_status == status, where


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


# --- httpx exceptions -----------------------------------------------------------------------------


def httpx_exception_classes() -> set[type[Exception]]:
    """Every exception class httpx defines: httpx.HTTPError and every subclass, walked through
    `__subclasses__()` (so a new class counts even if httpx does not export it), plus the exported
    ones outside that tree (InvalidURL, CookieConflict) and theirs. StreamError's subclasses are
    left out: RuntimeErrors of misuse, never raised by a call the client makes."""
    roots: set[type[Exception]] = {httpx.HTTPError}
    for name in httpx.__all__:
        obj = getattr(httpx, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            roots.add(obj)
    found: set[type[Exception]] = set()
    todo = list(roots)
    while todo:
        cls = todo.pop()
        # Only httpx's own: a subclass some other library defines is not httpx's to classify.
        if cls in found or issubclass(cls, httpx.StreamError) or cls.__module__ != "httpx":
            continue
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_table_classifies_every_httpx_exception():
    """A new httpx exception class must be classified here before the mapping test can pass."""
    assert httpx_exception_classes() == set(POST_EXPECTED)


def test_a_new_httpx_exception_class_would_fail_the_table_and_still_not_escape():
    """Sanity: an exception class httpx adds later (made here) is found by the walk but is not in
    the table, so the table test fails; meanwhile the client maps it the cautious way."""

    def check_a_future_class() -> None:
        class FutureError(httpx.TransportError):
            pass

        FutureError.__module__ = "httpx"  # as httpx's own classes report it
        assert FutureError in httpx_exception_classes()
        assert FutureError not in POST_EXPECTED

        def handler(request: httpx.Request):
            raise FutureError("boom", request=request)

        client = make_client(handler)
        try:
            assert type(call_and_catch(client, "POST")) is HubAmbiguousError
            assert type(call_and_catch(client, "GET run")) is HubTransportError
        finally:
            client.close()

    check_a_future_class()
    gc.collect()  # the class leaves httpx.TransportError.__subclasses__() once collected
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


# --- the token ------------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("length", "scrubbed"), [(MIN_SECRET_LENGTH - 1, False), (MIN_SECRET_LENGTH, True)]
)
def test_token_scrubbing_starts_at_the_shared_minimum_length(client_factory, length, scrubbed):
    """A token of MIN_SECRET_LENGTH chars is masked in exception text, one char shorter is not
    (the same boundary as log redaction in test_logs.py)."""
    token = "Hq7Zk2Wm9Xp4"[:length]

    def echo(request: httpx.Request):
        if request.method == "POST":
            raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {token}'")
        return json_response(401, {"message": f"bad token {token}"})

    client = client_factory(echo, token=token)
    transport_err, auth_err = call_and_catch(client, "POST"), call_and_catch(client, "GET run")
    assert isinstance(auth_err, HubAuthError)
    if scrubbed:
        assert "Bearer ***" in str(transport_err) and transport_err.__cause__ is None
        assert auth_err.message == "bad token ***"
        assert_no_token(transport_err, token)
        assert_no_token(auth_err, token)
    else:
        assert f"Bearer {token}" in str(transport_err)
        assert isinstance(transport_err.__cause__, httpx.LocalProtocolError)
        assert auth_err.message == f"bad token {token}"


def test_unsendable_token_is_refused_without_echoing_it():
    """An empty token or one with control characters is a TokenError that does not quote it."""
    for bad in ("", "abc\ndef", " padded ", "tök"):
        with pytest.raises(TokenError) as info:
            HubClient(base_url=BASE, token=bad)
        if bad.strip():
            assert bad.strip() not in str(info.value)


# --- 2xx bodies -----------------------------------------------------------------------------------


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


# --- the pool and misuse --------------------------------------------------------------------------


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
