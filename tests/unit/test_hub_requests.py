"""HubClient and its connection pool over httpx.MockTransport: token hygiene, headers, URLs,
constructor checks, pagination, threads."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator

import certifi
import httpx
import pytest

from tests.hub_helpers import (
    BASE,
    RUN_BODY,
    TOKEN,
    ClientFactory,
    json_response,
    make_client,
)
from watcher import __version__
from watcher.hub.client import HubClient


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


def test_token_is_not_in_repr_or_str():
    """repr/str of the client show base_url and context only."""
    client = make_client(lambda r: httpx.Response(200), context="acme")
    try:
        assert repr(client) == "HubClient(base_url='https://hub.example/api', context='acme')"
        assert TOKEN not in str(client)
        assert TOKEN not in repr(client._pool)
        assert TOKEN not in repr(client._pool._clients)
    finally:
        client.close()


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
