"""Batch operations over httpx.MockTransport: each endpoint's request and result, every status
and httpx exception mapped (a lost POST is ambiguous, a lost PUT/DELETE retryable), no token."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hub_helpers import (
    POST_EXPECTED,
    TOKEN,
    ClientFactory,
    assert_no_token,
    catch,
    expected_status_error,
    json_response,
    make_client,
    make_exception,
)
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
from watcher.hub.models import Batch, MultipartSession

SESSION = "yGLRzUtS2vHm9IdxMrsKaMEOXG7hGBU7KEuvm2JujgBuO9ZAwtqTYmAYauf1RHI8bgEq7qm_UnCE5YNdMg7.1Lv"


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.pdf"
    path.write_bytes(b"0123456789" * 3)
    return path


@dataclass(frozen=True)
class Call:
    """One batch operation: how to call it, what it requests, a 2xx body that satisfies it."""

    call: Callable[[HubClient, Path], object]
    method: str
    path: str
    ok_status: int
    ok_body: object = None
    none_on_404: bool = False


CALLS: dict[str, Call] = {
    "create_batch": Call(
        lambda c, p: c.batches.create_batch(name="rule drop", workspace="Finance"),
        "POST",
        "/v2/batches",
        200,
        {"id": 7},
    ),
    "get_batch": Call(
        lambda c, p: c.batches.get_batch(7),
        "GET",
        "/v2/batches/7",
        200,
        {"id": 7, "name": "b"},
        none_on_404=True,
    ),
    "delete_batch": Call(
        lambda c, p: c.batches.delete_batch(7),
        "DELETE",
        "/v2/batches/7",
        202,
        {"job_id": "job-1"},
        none_on_404=True,
    ),
    "upload_file": Call(
        lambda c, p: c.batches.upload_file(batch_id=7, filename="a.pdf", path=p, size=30),
        "PUT",
        "/v2/batches/7/files/a.pdf",
        204,
    ),
    "start_multipart": Call(
        lambda c, p: c.batches.start_multipart(batch_id=7, filename="a.pdf", file_size=30),
        "POST",
        "/v2/batches/multipart-upload",
        201,
        {"session_id": SESSION, "part_size": 10},
    ),
    "upload_part": Call(
        lambda c, p: c.batches.upload_part(
            session_id=SESSION, part_num=2, path=p, offset=10, length=10, file_size=30
        ),
        "PUT",
        f"/v2/batches/multipart-upload/sessions/{SESSION}/parts/2",
        201,
        {"part_id": "p-2", "part_num": 2},
    ),
    "commit_multipart": Call(
        lambda c, p: c.batches.commit_multipart(
            session_id=SESSION, parts=[(1, "p-1"), (2, "p-2"), (3, "p-3")]
        ),
        "POST",
        f"/v2/batches/multipart-upload/sessions/{SESSION}",
        201,
    ),
    "abort_multipart": Call(
        lambda c, p: c.batches.abort_multipart(session_id=SESSION),
        "POST",
        f"/v2/batches/multipart-upload/sessions/{SESSION}",
        201,
    ),
}


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return json_response(status, body, **headers)


def test_each_call_sends_its_method_path_and_body(client_factory, small):
    """Every batch call hits its spec path with its method; JSON bodies for POSTs, raw bytes with
    Content-Length and octet-stream for PUTs, nothing for GET/DELETE."""
    seen: list[httpx.Request] = []
    for name, c in CALLS.items():

        def handler(request: httpx.Request, c: Call = c) -> httpx.Response:
            seen.append(request)
            return answer(c.ok_status, c.ok_body)

        client = client_factory(handler, context="acme")
        c.call(client, small)
        req = seen[-1]
        assert (req.method, req.url.path) == (c.method, "/api" + c.path), name
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
        assert req.headers["ib-context"] == "acme"
        if c.method == "PUT":
            assert req.headers["content-type"] == "application/octet-stream", name
            assert req.headers["content-length"] == "30" if name == "upload_file" else "10"
            assert "transfer-encoding" not in req.headers
        elif c.method == "POST":
            assert req.headers["content-type"] == "application/json", name
        else:
            assert req.content == b"", name
    bodies = {
        name: json.loads(r.content) if r.method == "POST" else r.content
        for name, r in zip(CALLS, seen, strict=True)
    }
    assert bodies["create_batch"] == {"name": "rule drop", "workspace": "Finance"}
    assert bodies["upload_file"] == small.read_bytes()
    assert bodies["start_multipart"] == {"batch_id": 7, "filename": "a.pdf", "file_size": 30}
    assert bodies["upload_part"] == small.read_bytes()[10:20]
    assert bodies["commit_multipart"] == {
        "action": "commit",
        "parts": [
            {"part_num": 1, "part_id": "p-1"},
            {"part_num": 2, "part_id": "p-2"},
            {"part_num": 3, "part_id": "p-3"},
        ],
    }
    assert bodies["abort_multipart"] == {"action": "abort"}


def test_results_are_typed(client_factory, small):
    """create_batch -> Batch (name/workspace as sent, int64 strings accepted), get_batch -> the
    server's batchInfo with the rest in extra, start_multipart -> MultipartSession,
    upload_part -> the part id, delete_batch -> the job id, the rest -> None."""
    answers = {
        "create_batch": json_response(200, {"id": "12345"}),
        "get_batch": json_response(
            200, {"id": 7, "name": "b", "workspace": "ws", "mount_point": "Drive"}
        ),
        "delete_batch": json_response(202, {"job_id": "job-1"}),
    }
    got = {}
    for name, c in CALLS.items():
        resp = answers.get(name) or answer(c.ok_status, c.ok_body)
        got[name] = c.call(client_factory(lambda r, resp=resp: resp), small)
    assert got["create_batch"] == Batch(id=12345, name="rule drop", workspace="Finance")
    batch = got["get_batch"]
    assert (batch.id, batch.name, batch.workspace) == (7, "b", "ws")
    assert dict(batch.extra) == {"mount_point": "Drive"}
    assert got["start_multipart"] == MultipartSession(session_id=SESSION, part_size=10)
    assert got["upload_part"] == "p-2"
    assert got["delete_batch"] == "job-1"
    for name in ("upload_file", "commit_multipart", "abort_multipart"):
        assert got[name] is None


def test_create_batch_without_workspace_sends_only_the_name(client_factory):
    """No workspace: the body is just the name (the server uses the personal workspace)."""
    seen: list[httpx.Request] = []
    client = client_factory(lambda r: seen.append(r) or json_response(200, {"id": 1}))
    assert client.batches.create_batch(name="n") == Batch(id=1, name="n")
    assert json.loads(seen[0].content) == {"name": "n"}


def test_404_means_gone_for_get_and_delete(client_factory):
    """get_batch and delete_batch answer None on 404 (no batch, or already deleted)."""
    client = client_factory(lambda r: json_response(404, {"message": "Batch does not exist"}))
    assert client.batches.get_batch(7) is None
    assert client.batches.delete_batch(7) is None


def test_named_statuses_map_for_every_batch_call(client_factory, small):
    """401/403 pause (auth), 404 (except get/delete) 409 413 rejected with the server's message,
    429 rate-limited with Retry-After, 5xx server errors; a 504 to a POST is ambiguous."""
    for status in (401, 403, 404, 409, 413, 429, 500, 502, 503, 504):
        for name, c in CALLS.items():
            if status == 404 and c.none_on_404:
                continue
            headers = {"Retry-After": "3"} if status == 429 else {}
            client = client_factory(
                lambda r, s=status, h=headers: json_response(s, {"message": f"m{s}"}, **h)
            )
            err = catch(lambda c=c, client=client: c.call(client, small), name)
            where = f"{name} {status}"
            if status == 504 and c.method == "POST":
                assert type(err) is HubAmbiguousError, where
                continue
            cls = {401: HubAuthError, 403: HubAuthError, 429: HubRateLimitedError}.get(
                status, HubServerError if status >= 500 else HubRejectedError
            )
            assert type(err) is cls, where
            assert isinstance(err, HubStatusError)
            assert (err.http_status, err.message) == (status, f"m{status}"), where
            assert (err.method, err.path) == (c.method, c.path), where
            if cls is HubRateLimitedError:
                assert isinstance(err, HubRateLimitedError) and err.retry_after_s == 3.0
            assert_no_token(err)


def test_every_status_code_maps_for_every_batch_call(client_factory, small):
    """Each status from 100 to 599 becomes exactly its class for every batch call (2xx passes;
    get/delete's 404 is None): no status is left unmapped."""
    ok_bodies = {(c.method, "/api" + c.path): c.ok_body for c in CALLS.values()}
    for status in range(100, 600):
        client = client_factory(
            lambda r, s=status: answer(s, ok_bodies[(r.method, r.url.path)]), max_connections=1
        )
        for name, c in CALLS.items():
            expected = expected_status_error(status, c.method)
            if expected is None or (status == 404 and c.none_on_404):
                c.call(client, small)
                continue
            err = catch(lambda c=c, client=client: c.call(client, small), name)
            assert type(err) is expected, f"{name} HTTP {status} -> {type(err).__name__}"
            assert isinstance(err, HubStatusError | HubAmbiguousError)


def test_every_httpx_exception_maps_by_method(client_factory, small):
    """A POST that may have been sent is ambiguous; any PUT/GET/DELETE failure is a (retryable)
    transport error; never-sent POSTs are transport errors. No httpx exception escapes."""
    for cls, post_expected in POST_EXPECTED.items():
        for name, c in CALLS.items():

            def handler(request: httpx.Request, cls: type[Exception] = cls) -> httpx.Response:
                raise make_exception(cls, request)

            client = client_factory(handler)
            err = catch(lambda c=c, client=client: c.call(client, small), name)
            expected = post_expected if c.method == "POST" else HubTransportError
            assert type(err) is expected, f"{name} {cls.__name__} -> {type(err).__name__}"
            assert (err.method, err.path) == (c.method, c.path)
            assert isinstance(err.__cause__, cls)
            assert_no_token(err)


def test_a_lost_answer_is_ambiguous_for_posts_and_retryable_for_puts(client_factory, small):
    """A read timeout after sending: create_batch/start/commit may have taken effect
    (HubAmbiguousError); upload_file/upload_part/delete can simply be sent again."""
    for name, c in CALLS.items():

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("timed out", request=request)

        err = catch(lambda c=c: c.call(client_factory(handler), small), name)
        if c.method == "POST":
            assert type(err) is HubAmbiguousError, name
            assert "may have taken effect" in str(err)
        else:
            assert type(err) is HubTransportError, name


def test_2xx_bodies_that_do_not_fit_are_response_errors(client_factory, small):
    """A 2xx whose body is not the spec's shape is a HubResponseError, never a crash."""
    bad: dict[str, list[httpx.Response]] = {
        "create_batch": [
            httpx.Response(200, text="not json"),
            json_response(200, []),
            json_response(200, {"name": "x"}),
            json_response(200, {"id": "seven"}),
            json_response(200, {"id": True}),
            json_response(200, {"id": 7, "name": 5}),
        ],
        "get_batch": [json_response(200, {"id": 7}), json_response(200, {"id": 7, "name": None})],
        "delete_batch": [httpx.Response(202), json_response(202, {"job_id": 5})],
        "start_multipart": [
            json_response(201, {"session_id": SESSION}),
            json_response(201, {"session_id": "", "part_size": 10}),
            json_response(201, {"session_id": SESSION, "part_size": 0}),
            json_response(201, {"session_id": SESSION, "part_size": "big"}),
        ],
        "upload_part": [
            httpx.Response(201),
            json_response(201, {"part_num": 2}),
            json_response(201, {"part_id": "p-3", "part_num": 3}),
        ],
    }
    for name, responses in bad.items():
        for resp in responses:
            client = client_factory(lambda r, resp=resp: resp)
            err = catch(lambda name=name, client=client: CALLS[name].call(client, small), name)
            assert type(err) is HubResponseError, (name, resp.content)
            assert_no_token(err)


def test_names_and_ids_are_percent_encoded_in_the_path(client_factory, small):
    """A file name with spaces, '#', '%', '?' and non-ASCII is one encoded path segment; so is a
    session id."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(201, {"part_id": "p", "part_num": 1})

    client = client_factory(handler)
    client.batches.upload_file(batch_id=7, filename="a b#1 100%?ü.pdf", path=small, size=30)
    client.batches.upload_part(session_id="s/1 ä", part_num=1, path=small, offset=0, length=5)
    assert [r.url.raw_path for r in seen] == [
        b"/api/v2/batches/7/files/a%20b%231%20100%25%3F%C3%BC.pdf",
        b"/api/v2/batches/multipart-upload/sessions/s%2F1%20%C3%A4/parts/1",
    ]


def test_arguments_that_are_bugs_raise_value_error_before_sending(small):
    """A file name that is not one segment, a bad batch id, part 0 or unordered parts are
    caller bugs: ValueError, and nothing is sent."""
    client = make_client(lambda r: pytest.fail("must not send"))
    b = client.batches
    try:
        for filename in ("", ".", "..", "a/b.pdf"):
            with pytest.raises(ValueError):
                b.upload_file(batch_id=7, filename=filename, path=small, size=30)
            with pytest.raises(ValueError):
                b.start_multipart(batch_id=7, filename=filename, file_size=30)
        for batch_id in (-1, True):
            with pytest.raises(ValueError):
                b.get_batch(batch_id)
            with pytest.raises(ValueError):
                b.delete_batch(batch_id)
            with pytest.raises(ValueError):
                b.start_multipart(batch_id=batch_id, filename="a", file_size=1)
        with pytest.raises(ValueError):
            b.start_multipart(batch_id=7, filename="a", file_size=-1)
        with pytest.raises(ValueError):
            b.upload_part(session_id="s", part_num=0, path=small, offset=0, length=1)
        with pytest.raises(ValueError):
            b.upload_part(session_id="", part_num=1, path=small, offset=0, length=1)
        for parts in ([], [(2, "p")], [(1, "p"), (3, "q")], [(1, "")], [(True, "p")]):
            with pytest.raises(ValueError):
                b.commit_multipart(session_id="s", parts=parts)
    finally:
        client.close()


def test_batch_calls_share_the_clients_connections(client_factory, small):
    """Uploads borrow from the same pool as run calls: with its one connection busy, an upload
    waits and then fails as a transport error (nothing sent); after, it goes through."""
    entered, release = threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            entered.set()
            release.wait(10)
            return json_response(200, {"id": "r-1", "status": "RUNNING"})
        return httpx.Response(204)

    client = client_factory(handler, max_connections=1, timeout_s=0.2)
    holder = threading.Thread(target=client.get_run, args=("r-1",))
    holder.start()
    try:
        assert entered.wait(5)
        err = catch(
            lambda: client.batches.upload_file(batch_id=7, filename="a", path=small, size=30), "PUT"
        )
        assert type(err) is HubTransportError and "PoolTimeout" in str(err)
    finally:
        release.set()
        holder.join()
    client.batches.upload_file(batch_id=7, filename="a", path=small, size=30)


def test_batches_show_no_token_and_close_with_the_client(small):
    """repr(client.batches) shows nothing secret; after client.close() a batch call is a bug
    (RuntimeError), not a HubError."""
    client = make_client(lambda r: httpx.Response(204))
    assert TOKEN not in repr(client.batches)
    assert TOKEN not in repr(client.batches._sender)
    client.close()
    with pytest.raises(RuntimeError) as info:
        client.batches.upload_file(batch_id=7, filename="a", path=small, size=30)
    assert not isinstance(info.value, HubError)


def test_server_messages_echoing_the_token_are_scrubbed(client_factory, small):
    """A server error that repeats the token does not carry it into any batch call's error."""
    client = client_factory(lambda r: json_response(400, {"message": f"bad {TOKEN}"}))
    for name, c in CALLS.items():
        err: Any = catch(lambda c=c: c.call(client, small), name)
        assert err.message == "bad ***"
        assert_no_token(err)
