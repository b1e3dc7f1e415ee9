"""HTTP/1.1 framing over real sockets: keep-alive, close, pipelining, refusals, bad requests."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.sim_helpers import TOKEN, raw_exchange, submit


def test_keep_alive_serves_many_requests_on_one_connection(client, sim):
    """One httpx.Client reuses one connection across answers of every kind, errors included."""
    for i in range(40):
        assert submit(client, input_dir=f"k/{i}").status_code == 202
    assert client.get("/v2/apps/runs").status_code == 200
    assert client.head("/v2/files/k").status_code == 200
    assert client.head("/v2/files/missing").status_code == 404
    assert submit(client).status_code == 400
    assert client.get("/v2/apps/runs", headers={"Authorization": "Bearer no"}).status_code == 401
    assert client.get("/v2/zzz").status_code == 404
    assert sim.connections_accepted == 1


def test_connection_close_is_honoured(client, sim):
    """A request with Connection: close gets Connection: close and the connection ends."""
    for _ in range(2):
        resp = client.get("/v2/apps/runs", headers={"Connection": "close"})
        assert resp.status_code == 200
        assert resp.headers["connection"] == "close"
    assert sim.connections_accepted == 2


def test_chunked_body_is_refused_gracefully(client, sim):
    """A chunked request body gets 411 (not a reset) and the client can carry on."""
    resp = client.post(
        "/v2/apps/deployments/dep-1/runs", content=iter([b'{"input_dir":', b' "x"}'])
    )
    assert resp.status_code == 411
    assert "Content-Length" in resp.json()["message"]
    assert sim.runs == []
    assert submit(client, input_dir="x").status_code == 202


def test_pipelined_requests_are_answered_in_order(sim):
    """Two requests sent back to back on one socket get two answers, in order."""
    req = f"GET /api/v2/apps/runs/{{}} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    data = req.format("first") + "\r\n" + req.format("second") + "Connection: close\r\n\r\n"
    reply = raw_exchange(sim, data.encode())
    assert reply.count(b"HTTP/1.1 404 Not Found") == 2
    assert [r.path for r in sim.requests] == [
        "/api/v2/apps/runs/first",
        "/api/v2/apps/runs/second",
    ]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"garbage\r\n\r\n", b"400"),
        (b"GET /api/v2/apps/runs HTTP/2.0\r\n\r\n", b"505"),
        (b"GET /api/v2/apps/runs HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST /api/x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"400"),
        (b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", b"413"),
        (b"GET /api/v2/apps/runs HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
        (b"GET /api HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 200_000 + b"\r\n\r\n", b"431"),
    ],
)
def test_malformed_requests_get_an_error_and_close(sim, data, status):
    """Unparseable requests get a JSON error response, then the server closes the connection."""
    reply = raw_exchange(sim, data)
    assert reply.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in reply
    assert b'"message"' in reply


def test_http10_closes_unless_keep_alive(sim):
    """An HTTP/1.0 request without keep-alive is answered and then closed."""
    reply = raw_exchange(
        sim, f"GET /api/v2/apps/runs HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert reply.endswith(b'{"runs":[]}')


def test_expect_100_continue_gets_an_interim_answer(sim):
    """A client sending Expect: 100-continue gets 100 Continue, then the answer to its body."""
    parts = urlsplit(sim.url)
    assert parts.hostname is not None and parts.port is not None
    body = b'{"input_dir": "org/continue"}'
    head = (
        f"POST /api/v2/apps/deployments/dep-c/runs HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode())
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 202 Accepted")
    assert [r["input_dir"] for r in sim.runs] == ["org/continue"]


def test_malformed_header_is_not_echoed(sim):
    """The 400 for a malformed header line never quotes it back (it may carry the token)."""
    bad_line = f"Authorization : Bearer {TOKEN}"  # no space allowed before the colon
    reply = raw_exchange(
        sim, f"GET /api/v2/apps/runs HTTP/1.1\r\nHost: x\r\n{bad_line}\r\n\r\n".encode()
    )
    assert reply.startswith(b"HTTP/1.1 400 Bad Request")
    assert TOKEN.encode() not in reply and b"Authorization" not in reply
