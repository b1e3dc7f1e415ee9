"""The wire format: percent-encoded paths, list query params, Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.hub_helpers import (
    RUN_BODY,
    ClientFactory,
    json_response,
    make_client,
)
from watcher.hub.wire import encode_path, parse_retry_after


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


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
