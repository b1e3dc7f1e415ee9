"""The pool's own transport (`watcher.hub.transport.DirectTransport`) on real sockets: TLS is
verified, a keep-alive connection the server closed is replaced without an error, a proxy in the
environment hands every request to httpx, and a body that fails mid-send drops the connection."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from watcher.hub.client import HubClient
from watcher.hub.errors import HubTransportError, UploadSourceError
from watcher.hub.transport import DirectTransport, proxy_in_environment

pytestmark = pytest.mark.usefixtures("no_env_proxies")


class _Runs(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an empty run list over HTTP/1.1 keep-alive; closes the connection
    without saying so after each answer when the server's `drop_after_answer` is set."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"runs": []}).encode()
        server: Any = self.server
        server.cookies.append(self.headers.get("Cookie"))
        self.send_response(200)
        if server.set_cookie:
            self.send_header("Set-Cookie", "lb=node-2; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        server.answered += 1
        if server.drop_after_answer:
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None, *, drop: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Runs)
        self.answered = 0
        self.accepted = 0
        self.drop_after_answer = drop
        self.set_cookie = False
        self.cookies: list[str | None] = []
        self.closed = threading.Event()
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)

    def get_request(self) -> tuple[Any, Any]:
        self.accepted += 1
        return super().get_request()

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)  # the socket is closed now
        self.closed.set()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[_Server] = []

    def start(context: ssl.SSLContext | None = None, *, drop: bool = False) -> _Server:
        server = _Server(context, drop=drop)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _url(server: _Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}/api"


def test_https_verifies_the_certificate_and_trusts_only_the_given_ca(serve, self_signed):
    """An unknown certificate fails the connect (nothing sent: a transport error); with the
    certificate as ca_bundle the same server answers."""
    cert, key = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(context)
    with (
        HubClient(base_url=_url(server, "https"), token="t", timeout_s=5) as untrusted,
        pytest.raises(HubTransportError) as info,
    ):
        untrusted.list_runs()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    with HubClient(base_url=_url(server, "https"), token="t", ca_bundle=str(cert)) as trusted:
        assert trusted.list_runs() == []
        assert trusted.list_runs() == []
    assert server.answered == 2


def test_a_connection_the_server_closed_while_idle_is_replaced(serve):
    """The server drops the kept-alive connection after each answer without a Connection:
    close: the next request goes on a new connection instead of failing."""
    server = serve(drop=True)
    with HubClient(base_url=_url(server), token="t", max_connections=1) as c:
        for n in range(1, 4):
            assert c.list_runs() == []
            assert server.closed.wait(10)
            server.closed.clear()
            deadline = time.monotonic() + 10
            while server.accepted < n and time.monotonic() < deadline:
                time.sleep(0.01)
    assert server.answered == 3
    assert server.accepted == 3


def test_a_kept_alive_connection_is_reused(serve):
    server = serve()
    with HubClient(base_url=_url(server), token="t", max_connections=1) as c:
        for _ in range(5):
            assert c.list_runs() == []
    assert (server.answered, server.accepted) == (5, 1)


def test_a_cookie_the_hub_sets_is_sent_back_as_httpx_would(serve):
    """A load balancer's cookie is kept and sent on later requests, as httpx.Client does."""
    server = serve()
    server.set_cookie = True
    with HubClient(base_url=_url(server), token="t", max_connections=1) as c:
        for _ in range(3):
            assert c.list_runs() == []
    assert server.cookies == [None, "lb=node-2", "lb=node-2"]


def test_a_closed_client_is_a_bug_not_a_reconnect(serve):
    server = serve()
    c = HubClient(base_url=_url(server), token="t", max_connections=1)
    assert c.list_runs() == []
    c.close()
    with pytest.raises(RuntimeError):
        c.list_runs()
    assert server.accepted == 1


def test_a_proxy_in_the_environment_leaves_the_transport_to_httpx(monkeypatch):
    assert not proxy_in_environment("https")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert proxy_in_environment("https")
    assert not proxy_in_environment("http")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    assert proxy_in_environment("http")


def test_a_refused_connect_and_a_foreign_origin_are_never_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = DirectTransport(f"http://127.0.0.1:{port}/api", ssl_context=None)
    with pytest.raises(httpx.ConnectError):
        transport.handle_request(httpx.Request("GET", f"http://127.0.0.1:{port}/api/x"))
    with pytest.raises(httpx.UnsupportedProtocol):
        transport.handle_request(httpx.Request("GET", "http://example.invalid/api/x"))


class _GrowMidSend(DirectTransport):
    """The pool's transport, with a hook run once the first chunk of a PUT body is sent."""

    def __init__(self, base_url: str, hook: Any) -> None:
        super().__init__(base_url, ssl_context=None)
        self._hook = hook

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            inner = request.stream
            assert isinstance(inner, httpx.SyncByteStream)

            def chunks() -> Iterator[bytes]:
                for i, chunk in enumerate(inner):
                    yield chunk
                    if i == 0:
                        self._hook()

            request.stream = _Iter(chunks())
        return super().handle_request(request)


class _Iter(httpx.SyncByteStream):
    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it

    def __iter__(self) -> Iterator[bytes]:
        return self._it


def test_a_file_changing_mid_upload_raises_unchanged_and_drops_the_connection(hub_sim, tmp_path):
    """What the body's producer raises (the source file grew) leaves as itself, not as a network
    error; the half-sent connection is closed and the next call opens a new one."""
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"%" * (3 * 1024 * 1024))

    def grow() -> None:
        with path.open("ab") as f:
            f.write(b"late bytes")

    transport = _GrowMidSend(hub_sim.url, grow)
    with HubClient(base_url=hub_sim.url, token="t", max_connections=1, transport=transport) as c:
        assert c.list_runs() == []
        with pytest.raises(UploadSourceError):
            c.batches.upload_file(batch_id=1, filename="scan.pdf", path=path, size=3 * 1024 * 1024)
        run = c.run_deployment(deployment_id="dep-u", input_dir="in/after")
        assert c.get_run(run.id).id == run.id
    assert hub_sim.connections_accepted == 2


def test_an_answer_sent_before_the_whole_body_is_read_is_returned():
    """The server answers 413 after the headers and closes without reading the body: the send
    fails, and the answer is still read and returned (httpcore does the same), so a body that is
    too large is a rejection, not a network error."""
    answered = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n"
                    b"Connection: close\r\n\r\n{}"
                )
                time.sleep(0.1)
            answered.set()

        threading.Thread(target=serve, daemon=True).start()
        chunk = b"x" * 65536

        def body() -> Iterator[bytes]:
            yield chunk
            answered.wait(10)
            for _ in range(2000):
                yield chunk

        transport = DirectTransport(f"http://127.0.0.1:{port}/api", ssl_context=None)
        request = httpx.Request(
            "PUT",
            f"http://127.0.0.1:{port}/api/upload",
            headers={"Content-Length": str(len(chunk) * 2001)},
            content=_Iter(body()),
            extensions={"timeout": {"connect": 5, "read": 5, "write": 5, "pool": 5}},
        )
        resp = transport.handle_request(request)
        assert resp.status_code == 413
        assert resp.read() == b"{}"
        transport.close()
