"""HubClient against the real simulator on 127.0.0.1: happy path, and each error from a fault."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from watcher.hub.client import HubClient
from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubNotSentError,
    HubRateLimitedError,
    HubRejectedError,
    HubServerError,
    HubTransportError,
    UploadSourceError,
)
from watcher.hub.policy import HoldAll, next_step

INPUT = "acme/ws/fs/Instabase Drive/in/drop #1"


PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_env_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client honours proxy variables; keep the runner's own out of loopback tests."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def client(hub_sim: Any) -> Iterator[HubClient]:
    with HubClient(base_url=hub_sim.url, token="t", context="acme") as c:
        yield c


def server_message(method: str, url: str, **kwargs: Any) -> str:
    """The `message` the simulator answers with, fetched without our client."""
    resp = httpx.request(method, url, trust_env=False, **kwargs)
    message: str = resp.json()["message"]
    return message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_happy_path(hub_sim, client):
    """run_deployment -> get_run -> list_runs filtered by deployment; HEAD on files and folders."""
    run = client.run_deployment(
        deployment_id="dep-a",
        input_dir=INPUT,
        output_dir="acme/ws/fs/Instabase Drive/out",
        settings={"tags": ["rule:x"], "keys": {"custom": {"k": "v"}}},
    )
    batch_id = hub_sim.add_batch()
    other = client.run_deployment(deployment_id="dep-b", batch_id=batch_id)
    assert run.status == "RUNNING"
    assert (run.deployment_id, run.input_dir, run.tags) == ("dep-a", INPUT, ("rule:x",))
    assert other.batch_id == batch_id

    got = client.get_run(run.id)
    assert (got.id, got.deployment_id, got.input_dir) == (run.id, "dep-a", INPUT)
    assert got.status in ("RUNNING", "COMPLETE")

    assert [r.id for r in client.list_runs(deployment_id="dep-a")] == [run.id]
    assert [r.id for r in client.list_runs(deployment_id="dep-b")] == [other.id]
    assert {r.id for r in client.list_runs()} == {run.id, other.id}

    posted = [r for r in hub_sim.requests if r.method == "POST"]
    assert posted[0].body == {
        "input_dir": INPUT,
        "output_dir": "acme/ws/fs/Instabase Drive/out",
        "settings": {"tags": ["rule:x"], "keys": {"custom": {"k": "v"}}},
    }

    # The simulator knows a run's input folder (and its parents) as folders.
    folder = client.file_metadata(INPUT)
    assert folder is not None and folder.is_folder and folder.size is None
    assert client.file_metadata("acme/ws") is not None
    assert client.file_metadata("acme/ws/fs/nothing here?") is None
    file_path = f"{INPUT}/scan 1 ä?#%.pdf"
    hub_sim.add_path(file_path, size=1234)
    meta = client.file_metadata(file_path)
    assert meta is not None
    assert (meta.path, meta.is_folder, meta.size) == (file_path, False, 1234)
    assert meta.last_modified
    # Calls from one thread take turns on one keep-alive connection.
    assert hub_sim.connections_accepted == 1
    heads = [r.path for r in hub_sim.requests if r.method == "HEAD"]
    assert heads[-1] == (
        "/api/v2/files/acme/ws/fs/Instabase%20Drive/in/drop%20%231/scan%201%20%C3%A4%3F%23%25.pdf"
    )


def test_iter_runs_pages_through_the_simulator(hub_sim, client):
    """iter_runs fetches limit/offset pages until a short one and yields each run once."""
    ids = {client.run_deployment(deployment_id="dep-p", input_dir=f"in/{i}").id for i in range(5)}
    client.run_deployment(deployment_id="dep-other", input_dir="in/x")
    assert {r.id for r in client.iter_runs(page_size=2, deployment_id="dep-p")} == ids
    listed = [r.query for r in hub_sim.requests if r.method == "GET"]
    assert [(q["offset"], q["limit"]) for q in listed] == [
        (["0"], ["2"]),
        (["2"], ["2"]),
        (["4"], ["2"]),
    ]


def test_status_filter_and_from_timestamp(hub_sim, client):
    """list_runs sends status and seconds timestamps the simulator filters on."""
    a = client.run_deployment(deployment_id="dep-s", input_dir="in/a")
    b = client.run_deployment(deployment_id="dep-s", input_dir="in/b")
    hub_sim.set_run_status(a.id, "FAILED")
    assert [r.id for r in client.list_runs(deployment_id="dep-s", status=["FAILED"])] == [a.id]
    both = client.list_runs(deployment_id="dep-s", status=["FAILED", "RUNNING", "COMPLETE"])
    assert {r.id for r in both} == {a.id, b.id}
    start_s = (b.start_timestamp or 0) // 1_000_000_000
    assert b.id in {r.id for r in client.list_runs(deployment_id="dep-s", from_timestamp=start_s)}
    assert client.list_runs(deployment_id="dep-s", to_timestamp=start_s - 3600) == []


def test_wrong_token_is_an_auth_error(hub_sim):
    """A wrong token -> HubAuthError (401) with the server's message, for every call."""
    message = server_message("GET", f"{hub_sim.url}/v2/apps/runs")
    with HubClient(base_url=hub_sim.url, token="wrong-token-value") as bad:
        calls = (
            lambda: bad.run_deployment(deployment_id="dep", input_dir=INPUT),
            lambda: bad.get_run("nope"),
            bad.list_runs,
            lambda: bad.file_metadata(INPUT),
        )
        for call in calls:
            with pytest.raises(HubAuthError) as info:
                call()
            assert info.value.http_status == 401
            if info.value.method != "HEAD":
                assert info.value.message == message
            assert "wrong-token-value" not in str(info.value)
    assert hub_sim.runs == []


def test_fail_rate_is_a_server_error(hub_sim, client):
    """fail_rate=1 -> every submission is a 503 HubServerError; reads still work."""
    hub_sim.options.fail_rate = 1.0
    with pytest.raises(HubServerError) as info:
        client.run_deployment(deployment_id="dep", input_dir=INPUT)
    assert info.value.http_status == 503
    assert info.value.message
    assert client.list_runs() == []
    assert hub_sim.runs == []


def test_rate_limit_is_rate_limited_with_retry_after(hub_sim, client):
    """Past the rate limit -> HubRateLimitedError with Retry-After; next_step holds that long."""
    hub_sim.options.rate_limit = 1.0
    err: HubRateLimitedError | None = None
    for _ in range(10):
        try:
            client.run_deployment(deployment_id="dep", input_dir=INPUT)
        except HubRateLimitedError as exc:
            err = exc
            break
    assert err is not None, "no 429 after 10 submissions at 1/s"
    assert err.http_status == 429
    assert err.retry_after_s is not None and 0 < err.retry_after_s <= 60
    assert next_step(err, attempt=1, max_attempts=5) == HoldAll(err.retry_after_s)


def test_lost_response_is_ambiguous_and_the_run_exists(hub_sim, client):
    """lose_response_rate=1 -> HubAmbiguousError on the POST, yet the run is listed afterwards."""
    hub_sim.options.lose_response_rate = 1.0
    with pytest.raises(HubAmbiguousError) as info:
        client.run_deployment(deployment_id="dep-lost", input_dir=INPUT)
    assert info.value.method == "POST"
    hub_sim.options.lose_response_rate = 0.0
    runs = client.list_runs(deployment_id="dep-lost")
    assert [r.input_dir for r in runs] == [INPUT]


def test_missing_input_is_rejected_with_the_server_message(hub_sim, client):
    """Neither input_dir nor batch_id -> HubRejectedError (400) with the server's message."""
    url = f"{hub_sim.url}/v2/apps/deployments/dep/runs"
    message = server_message("POST", url, json={}, headers={"Authorization": "Bearer t"})
    with pytest.raises(HubRejectedError) as info:
        client.run_deployment(deployment_id="dep")
    assert info.value.http_status == 400
    assert info.value.message == message
    assert str(info.value) == f"POST /v2/apps/deployments/dep/runs: HTTP 400: {message}"
    with pytest.raises(HubRejectedError) as info:
        client.get_run("no-such-run")
    assert info.value.http_status == 404


def test_closed_port_is_a_transport_error():
    """Nothing listening -> HubTransportError for POST and GET alike (nothing was sent)."""
    with HubClient(base_url=f"http://127.0.0.1:{free_port()}/api", token="t") as c:
        with pytest.raises(HubTransportError):
            c.run_deployment(deployment_id="dep", input_dir=INPUT)
        with pytest.raises(HubTransportError):
            c.get_run("r")
        with pytest.raises(HubTransportError):
            c.file_metadata(INPUT)


def test_slow_server_times_out_ambiguous_for_post_transport_for_get(hub_sim):
    """latency above the client's read timeout: POST -> HubAmbiguousError, GET -> transport."""
    hub_sim.options.latency_ms = 2000
    with HubClient(base_url=hub_sim.url, token="t", timeout_s=0.2) as slow:
        with pytest.raises(HubAmbiguousError) as post_info:
            slow.run_deployment(deployment_id="dep", input_dir=INPUT)
        assert "ReadTimeout" in str(post_info.value)
        with pytest.raises(HubTransportError) as get_info:
            slow.list_runs()
        assert "ReadTimeout" in str(get_info.value)


def test_proxy_from_the_environment_is_used(hub_sim, monkeypatch):
    """HTTP_PROXY is honoured: requests for an unresolvable host go to the proxy (the simulator,
    which accepts absolute-form request targets)."""
    origin = hub_sim.url.removesuffix("/api")
    monkeypatch.setenv("HTTP_PROXY", origin)
    with HubClient(base_url="http://aihub.example.invalid/api", token="t") as proxied:
        assert proxied.list_runs(deployment_id="dep-proxy") == []
    assert hub_sim.requests[-1].query == {"deployment_id": ["dep-proxy"]}


def test_worker_threads_share_one_pool(hub_sim):
    """Eight threads submitting through one client: every run created, connections reused."""
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    with HubClient(base_url=hub_sim.url, token="t", max_connections=4) as shared:

        def worker(n: int) -> None:
            try:
                for i in range(25):
                    run = shared.run_deployment(deployment_id="dep-t", input_dir=f"in/{n}/{i}")
                    with lock:
                        ids.append(run.id)
            except HubError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(set(ids)) == 200
    assert len(hub_sim.runs) == 200
    assert hub_sim.connections_accepted <= 4


class _AfterFirstChunk(httpx.SyncByteStream):
    """A request body that runs `hook` once its first chunk is on the wire."""

    def __init__(self, inner: httpx.SyncByteStream, hook: Any) -> None:
        self._inner, self._hook = inner, hook

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self._inner):
            yield chunk
            if i == 0:
                self._hook()


class _TamperingTransport(httpx.HTTPTransport):
    """The real transport, with a hook that changes the file while a PUT body is being sent."""

    def __init__(self, hook: Any) -> None:
        super().__init__()
        self._hook = hook

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            assert isinstance(request.stream, httpx.SyncByteStream)
            request.stream = _AfterFirstChunk(request.stream, self._hook)
        return super().handle_request(request)


def test_a_file_changing_mid_upload_drops_the_connection_not_the_pool(hub_sim, tmp_path):
    """A file that grows while its PUT is on a real socket fails with UploadSourceError after
    part of the body; the half-sent connection is discarded, and the pool's one connection
    works for the next call (a new socket, not a desynchronised one)."""
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"%" * (3 * 1024 * 1024))

    def grow() -> None:
        with path.open("ab") as f:
            f.write(b"late bytes")

    with HubClient(
        base_url=hub_sim.url, token="t", max_connections=1, transport=_TamperingTransport(grow)
    ) as c:
        assert c.list_runs() == []
        with pytest.raises(UploadSourceError):
            c.batches.upload_file(batch_id=1, filename="scan.pdf", path=path, size=3 * 1024 * 1024)
        run = c.run_deployment(deployment_id="dep-u", input_dir="in/after")
        assert c.get_run(run.id).id == run.id
    assert hub_sim.connections_accepted == 2


def test_a_post_past_its_send_deadline_is_not_sent(hub_sim, client):
    """`send_before` in the past: HubNotSentError, and AI Hub never sees the request (hosts on
    a shared ledger fence a run's POST by their lease this way). The connection stays usable:
    the next POST, inside its deadline, goes out and creates its run."""
    with pytest.raises(HubNotSentError, match="send deadline passed"):
        client.run_deployment(deployment_id="dep-a", input_dir=INPUT, send_before=time.time() - 1)
    assert [r for r in hub_sim.requests if r.method == "POST"] == []
    assert hub_sim.runs == []
    run = client.run_deployment(
        deployment_id="dep-a", input_dir=INPUT, send_before=time.time() + 60
    )
    assert [r["id"] for r in hub_sim.runs] == [run.id]
