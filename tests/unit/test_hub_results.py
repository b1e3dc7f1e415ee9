"""Run results over httpx.MockTransport: every page fetched by file_offset and merged in order,
options passed as query flags, a broken page a HubResponseError, errors mapped, no token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.hub_helpers import (
    ClientFactory,
    assert_no_token,
    catch,
    json_response,
    make_client,
)
from watcher.hub.errors import (
    HubAuthError,
    HubRejectedError,
    HubResponseError,
    HubServerError,
    HubTransportError,
)
from watcher.hub.results import ResultPages

PATH = "/v2/apps/runs/r-1/results"


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


def page(names: list[str], *, has_more: bool | None, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "r-1",
        "status": "COMPLETE",
        "files": [{"original_file_name": n, "documents": []} for n in names],
        **top,
    }
    if has_more is not None:
        body["has_more"] = has_more
    return body


class Pages:
    """A handler serving `pages` by the file_offset each one starts at; records the queries."""

    def __init__(self, *pages: dict[str, Any]) -> None:
        self.by_offset: dict[int, dict[str, Any]] = {}
        offset = 0
        for p in pages:
            self.by_offset[offset] = p
            offset += len(p.get("files") or [])
        self.queries: list[list[tuple[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and request.url.path == "/api" + PATH
        self.queries.append(request.url.params.multi_items())
        return json_response(200, self.by_offset[int(request.url.params["file_offset"])])


def test_three_pages_are_merged_in_order(client_factory):
    """Pages at file_offset 0, 2, 3 are fetched in turn; the result holds the first page's
    fields, all four files in order, and has_more false."""
    first = page(["a", "b"], has_more=True, batch_id="9706", message="done", case_info={})
    pages = Pages(
        first,
        page(["c"], has_more=True, message="page 2 must not win"),
        page(["d"], has_more=False),
    )
    merged = client_factory(pages).fetch_run_results("r-1")
    assert pages.queries == [
        [("file_offset", "0")],
        [("file_offset", "2")],
        [("file_offset", "3")],
    ]
    assert [f["original_file_name"] for f in merged["files"]] == ["a", "b", "c", "d"]
    assert merged == {**first, "files": merged["files"], "has_more": False}
    assert merged["message"] == "done"


def test_options_are_query_flags_on_every_page(client_factory):
    """Options go on every page's query in their order, booleans as true/false, before
    file_offset."""
    pages = Pages(page(["a"], has_more=True), page(["b"], has_more=False))
    client_factory(pages).fetch_run_results(
        "r-1",
        options={"include_confidence_scores": True, "include_source_info": False, "x_new": 5},
    )
    flags = [
        ("include_confidence_scores", "true"),
        ("include_source_info", "false"),
        ("x_new", "5"),
    ]
    assert pages.queries == [[*flags, ("file_offset", "0")], [*flags, ("file_offset", "1")]]


def test_a_single_page_without_has_more_is_the_whole(client_factory):
    """No has_more means the last page; `files` missing or null is an empty list."""
    bodies = [
        (page(["a"], has_more=None), ["a"]),
        ({"id": "r-1", "status": "COMPLETE", "files": None, "has_more": None}, []),
        ({"id": "r-1", "status": "COMPLETE"}, []),
    ]
    for body, names in bodies:
        client = client_factory(lambda r, body=body: json_response(200, body))
        merged = client.fetch_run_results("r-1")
        assert [f["original_file_name"] for f in merged["files"]] == names
        assert merged["has_more"] is False and merged["id"] == "r-1"


def test_broken_pages_are_response_errors(client_factory):
    """A page that is not JSON, not an object, with files not a list of objects, has_more not a
    boolean, or has_more with no files is a HubResponseError, also on a later page."""
    good = page(["a"], has_more=True)
    broken: list[httpx.Response] = [
        httpx.Response(200, text="<html>"),
        json_response(200, []),
        json_response(200, {"files": {}}),
        json_response(200, {"files": ["a.pdf"]}),
        json_response(200, {"files": [], "has_more": "yes"}),
        json_response(200, {"files": [], "has_more": True}),
    ]
    for bad in broken:
        for first_ok in (False, True):
            answers = [json_response(200, good), bad] if first_ok else [bad]

            def handler(request: httpx.Request, answers=answers) -> httpx.Response:
                return answers[min(len(answers) - 1, int(request.url.params["file_offset"]))]

            client = client_factory(handler)
            err = catch(lambda client=client: client.fetch_run_results("r-1"), "results")
            assert type(err) is HubResponseError, bad.content
            assert (err.method, err.path) == ("GET", PATH)
            assert_no_token(err)


def test_a_server_ignoring_file_offset_stops_at_max_pages(client_factory):
    """A server that always says has_more stops after max_pages with a HubResponseError."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return json_response(200, page(["same"], has_more=True))

    client = client_factory(handler)
    err = catch(lambda: client.fetch_run_results("r-1", max_pages=5), "results")
    assert type(err) is HubResponseError and "after 5 pages" in str(err)
    assert len(calls) == 5


def test_errors_on_any_page_map_and_give_no_partial_result(client_factory):
    """401 pauses, 404 rejects (no such run), 5xx and lost answers retry; on page 2 too."""
    cases = [
        (json_response(401, {"message": "expired"}), HubAuthError),
        (json_response(404, {"message": "run not found"}), HubRejectedError),
        (json_response(503, {"message": "busy"}), HubServerError),
        (None, HubTransportError),
    ]
    for resp, cls in cases:

        def handler(request: httpx.Request, resp=resp) -> httpx.Response:
            if request.url.params["file_offset"] == "0":
                return json_response(200, page(["a"], has_more=True))
            if resp is None:
                raise httpx.ReadTimeout("timed out", request=request)
            return resp

        client = client_factory(handler)
        err = catch(lambda client=client: client.fetch_run_results("r-1"), "results")
        assert type(err) is cls
        assert_no_token(err)


def test_bad_options_are_bugs_caught_before_sending():
    """file_offset as an option, a float, None or an empty name raise ValueError; nothing sent."""
    client = make_client(lambda r: pytest.fail("must not send"))
    try:
        for options in ({"file_offset": 3}, {"x": 0.5}, {"x": None}, {"": True}):
            with pytest.raises(ValueError):
                client.fetch_run_results("r-1", options=options)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            client.fetch_run_results("..")
    finally:
        client.close()


def test_run_id_is_one_encoded_segment(client_factory):
    """A run id with '/', space or '#' stays one percent-encoded path segment."""
    seen: list[httpx.Request] = []
    client = client_factory(
        lambda r: seen.append(r) or json_response(200, page([], has_more=False))
    )
    client.fetch_run_results("a/b #1")
    assert seen[0].url.raw_path.startswith(b"/api/v2/apps/runs/a%2Fb%20%231/results?")


def test_result_pages_misuse_is_a_bug():
    """Merging before the last page, or adding after it, is a RuntimeError."""
    pages = ResultPages(method="GET", path=PATH)
    with pytest.raises(RuntimeError):
        pages.merged()
    assert pages.add(page(["a"], has_more=False)) is None
    with pytest.raises(RuntimeError):
        pages.add(page(["b"], has_more=False))
