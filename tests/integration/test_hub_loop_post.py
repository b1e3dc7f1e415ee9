"""The run POST on the event loop (`watcher.hub.loop_post.LoopPoster`) on real sockets: the same
request and answers as `HubClient.run_deployment`, kept-alive connections, TLS verified, and
every failure the same `Hub*` error as the threaded path (nothing sent / may have been sent)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from watcher.hub.client import HubClient
from watcher.hub.errors import (
    HubAmbiguousError,
    HubNotSentError,
    HubRateLimitedError,
    HubServerError,
    HubTransportError,
)

pytestmark = pytest.mark.usefixtures("no_env_proxies")

TOKEN = "secret-token-for-loop-post"
RUN = b'{"id":"run-1","status":"RUNNING"}'
DIR = "acme/fs/drive/drops/a"


def _answer(body: bytes = RUN, status: str = "202 Accepted", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Scripted:
    """A server on 127.0.0.1 that reads each request whole, records it, and then does what the
    next step of its script says: send bytes (and maybe close), close at once, or stay silent."""

    def __init__(self, steps: list[tuple[str, bytes]], context: ssl.SSLContext | None = None):
        self.steps = list(steps)
        self.requests: list[bytes] = []
        self.accepted = 0
        self.closed = threading.Semaphore(0)  # released each time it closes a connection
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._context = context
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/api"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self._context is not None:
                try:
                    conn = self._context.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    conn.close()
                    continue
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while self.steps:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                action, data = self.steps.pop(0)
                if action == "silent":
                    self._stop.wait(30)
                    return
                if data:
                    conn.sendall(data)
                if action == "close":
                    conn.close()
                    self.closed.release()
                    return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def start(steps: list[tuple[str, bytes]], context: ssl.SSLContext | None = None) -> Scripted:
        servers.append(Scripted(steps, context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _post(url: str, *, times: int = 1, **kw: Any) -> list[Any]:
    """`times` run POSTs on the loop, one after another, with one client."""
    client_kw = {k: kw.pop(k) for k in ("timeout_s", "ca_bundle") if k in kw}

    async def go() -> list[Any]:
        with HubClient(base_url=url, token=TOKEN, context="acme", **client_kw) as client:
            poster = client.loop_poster
            assert poster is not None
            return [
                await poster.run_deployment(deployment_id="dep-1", input_dir=DIR, **kw)
                for _ in range(times)
            ]

    return asyncio.run(go())


def test_the_loop_post_sends_what_run_deployment_sends_and_gets_the_same_run(hub_sim):
    """Against the simulator: same body, same answer shape; the request carries the token
    and context (the simulator refuses it otherwise)."""
    with HubClient(base_url=hub_sim.url, token="t", context="acme") as client:
        threaded = client.run_deployment(
            deployment_id="dep-1", input_dir=DIR, output_dir="acme/out", settings={"tags": ["x"]}
        )

        async def on_loop() -> Any:
            poster = client.loop_poster
            assert poster is not None
            return await poster.run_deployment(
                deployment_id="dep-1",
                input_dir=DIR,
                output_dir="acme/out",
                settings={"tags": ["x"]},
            )

        looped = asyncio.run(on_loop())
    first, second = (r for r in hub_sim.requests if r.method == "POST")
    assert first.path == second.path == "/api/v2/apps/deployments/dep-1/runs"
    assert first.body == second.body
    assert (looped.status, type(looped)) == (threaded.status, type(threaded))
    assert looped.id != threaded.id and len(hub_sim.runs) == 2


def test_keep_alive_connection_is_reused_and_headers_are_the_clients(scripted):
    server = scripted([("answer", _answer())] * 3)
    runs = _post(server.url(), times=3)
    assert [r.id for r in runs] == ["run-1"] * 3
    assert server.accepted == 1
    head = server.requests[0].split(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST /api/v2/apps/deployments/dep-1/runs HTTP/1.1")
    for header in (f"Authorization: Bearer {TOKEN}", "IB-Context: acme", "Host: 127.0.0.1:"):
        assert header in head


def test_a_connection_the_server_closed_after_answering_is_not_reused(scripted):
    """Connection: close, or a close without saying so: the next POST opens a new connection
    and is not mistaken for a lost answer."""
    server = scripted(
        [
            ("close", _answer(extra="Connection: close\r\n")),
            ("close", _answer()),
            ("answer", _answer()),
        ]
    )

    async def go() -> list[Any]:
        with HubClient(base_url=server.url(), token=TOKEN) as client:
            poster = client.loop_poster
            assert poster is not None
            runs = []
            for _ in range(3):
                runs.append(await poster.run_deployment(deployment_id="dep-1", input_dir=DIR))
                if len(runs) < 3:  # the server has closed it when the next POST starts
                    assert await asyncio.to_thread(server.closed.acquire, True, 10)
            return runs

    assert len(asyncio.run(go())) == 3
    assert server.accepted == 3 and len(server.requests) == 3


def test_an_encoded_base_path_goes_out_as_httpx_sends_it(scripted):
    """A base URL whose path holds an escaped space: the request line carries it escaped."""
    server = scripted([("answer", _answer())])
    _post(f"http://127.0.0.1:{server.port}/my%20api")
    assert server.requests[0].startswith(b"POST /my%20api/v2/apps/deployments/dep-1/runs HTTP/1.1")


def test_an_error_whose_body_claims_an_encoding_is_still_its_status(scripted):
    """A gateway's 502 with a body that says gzip but is not: still a server error (retried
    after a listing), never an exception from outside the hub's errors."""
    bad = _answer(b"<html>bad gateway</html>", "502 Bad Gateway", "Content-Encoding: gzip\r\n")
    server = scripted([("answer", bad)])
    with pytest.raises(HubServerError) as info:
        _post(server.url())
    assert info.value.http_status == 502


def test_a_chunked_answer_and_a_1xx_before_it_are_read(scripted):
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (RUN[:10], RUN[10:]))
        + b"0\r\n\r\n"
    )
    server = scripted([("answer", chunked), ("answer", _answer())])
    runs = _post(server.url(), times=2)
    assert [r.id for r in runs] == ["run-1", "run-1"] and server.accepted == 1


def test_a_status_is_judged_as_the_threaded_path_judges_it(scripted):
    busy = _answer(b'{"message":"slow down"}', "429 Too Many Requests", "Retry-After: 7\r\n")
    server = scripted([("answer", busy)])
    with pytest.raises(HubRateLimitedError) as info:
        _post(server.url())
    assert info.value.retry_after_s == 7 and "slow down" in str(info.value)


def test_a_refused_connection_was_never_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    with pytest.raises(HubTransportError) as info:
        _post(f"http://127.0.0.1:{port}/api")
    assert not isinstance(info.value, HubAmbiguousError)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("action", ["close", "silent"])
def test_no_answer_after_sending_is_ambiguous_and_never_shows_the_token(scripted, action):
    """The server took the request, then closed or said nothing until the timeout: the run
    may exist, so the error says so (the policy then looks for it before any new POST)."""
    server = scripted([(action, b"")])
    started = time.monotonic()
    with pytest.raises(HubAmbiguousError) as info:
        _post(server.url(), timeout_s=1)
    assert time.monotonic() - started < 10
    assert len(server.requests) == 1
    assert "may have taken effect" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


def test_a_passed_send_deadline_sends_nothing(scripted):
    server = scripted([("answer", _answer())])
    with pytest.raises(HubNotSentError):
        _post(server.url(), send_before=time.time() - 1)
    assert server.requests == []


def test_https_is_verified_with_the_clients_trust(scripted, self_signed: tuple[Path, Path]):
    """An unknown certificate fails the connect (nothing sent); with it as ca_bundle the POSTs
    go through over one kept-alive TLS connection."""
    cert, key = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = scripted([("answer", _answer())] * 3, context)
    with pytest.raises(HubTransportError) as info:
        _post(server.url("https"))
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert not isinstance(info.value, HubAmbiguousError)
    runs = _post(server.url("https"), times=3, ca_bundle=str(cert))
    assert [r.id for r in runs] == ["run-1"] * 3 and len(server.requests) == 3
    # One TLS connection for the three (the refused one was the first): no handshake per POST.
    assert server.accepted == 2


def test_a_proxy_in_the_environment_or_a_test_transport_means_no_loop_poster(monkeypatch):
    import httpx

    with HubClient(
        base_url="http://127.0.0.1:9/api", token=TOKEN, transport=httpx.MockTransport(print)
    ) as client:
        assert client.loop_poster is None
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with HubClient(base_url="http://127.0.0.1:9/api", token=TOKEN) as client:
        assert client.loop_poster is None
