"""Upload bodies are streamed, never held: memory, bodies cut short, 100-continue, keep-alive."""

from __future__ import annotations

import hashlib
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import wait_until
from tests.sim_helpers import AUTH, PROJECT_ROOT, TOKEN, create_batch, submit

MIB = 1024 * 1024
BIG = 256 * MIB


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")  # pragma: no cover


def _chunks(total: int, digest: hashlib._Hash) -> Iterator[bytes]:
    block = os.urandom(MIB)
    for i in range(total // MIB):
        chunk = i.to_bytes(8, "big") + block[8:]
        digest.update(chunk)
        yield chunk


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_256_mib_upload_does_not_grow_the_simulator(tmp_path):
    """hub-sim's peak RSS grows by far less than a 256 MiB body it receives, hashed right."""
    cmd = [sys.executable, "-m", "watcher", "hub-sim", "--port", "0", "--token", TOKEN]
    with subprocess.Popen(
        [*cmd, "--max-put-bytes", str(BIG)], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    ) as proc:
        try:
            assert proc.stdout is not None
            assert select.select([proc.stdout], [], [], 30)[0], "no URL from hub-sim"
            url = proc.stdout.readline().strip()
            with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
                batch_id = create_batch(client)
                before_kib = _peak_rss_kib(proc.pid)
                digest = hashlib.sha256()
                resp = client.put(
                    f"/v2/batches/{batch_id}/files/big.bin",
                    content=_chunks(BIG, digest),
                    headers={"Content-Length": str(BIG)},
                )
                assert resp.status_code == 204, resp.text
                grown_mib = (_peak_rss_kib(proc.pid) - before_kib) / 1024
                run_id = submit(client, batch_id=batch_id).json()["id"]
                page = client.get(f"/v2/apps/runs/{run_id}/results").json()
        finally:
            proc.terminate()
    fields = {f["field_name"]: f["value"] for f in page["files"][0]["documents"][0]["fields"]}
    assert fields == {"file_name": "big.bin", "size_bytes": str(BIG), "sha256": digest.hexdigest()}
    assert grown_mib < 32, f"the simulator grew by {grown_mib:.0f} MiB for a 256 MiB upload"


def _address(sim):
    parts = urlsplit(sim.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def test_a_body_cut_short_stores_nothing(client, sim):
    """A PUT whose client goes away mid-body leaves the earlier version of the file in place."""
    batch_id = create_batch(client)
    assert client.put(f"/v2/batches/{batch_id}/files/a.bin", content=b"old").status_code == 204
    head = (
        f"PUT /api/v2/batches/{batch_id}/files/a.bin HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(_address(sim), timeout=10) as sock:
        sock.sendall(head.encode() + b"n" * 50_000)
    client.close()
    wait_until(lambda: sim.open_connections == 0, timeout=10, what="the connections to end")
    assert sim.batches[0]["files"]["a.bin"]["size"] == 3


def test_expect_100_continue_on_an_upload(sim):
    """A PUT with Expect: 100-continue gets 100 Continue, then 204 once the body is sent."""
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=10) as c:
        batch_id = create_batch(c)
    body = b"0123456789" * 1000
    head = (
        f"PUT /api/v2/batches/{batch_id}/files/a.bin HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(_address(sim), timeout=10) as sock:
        sock.sendall(head.encode())
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"Content-Length" not in reply
    assert sim.batches[0]["files"]["a.bin"]["size"] == len(body)


def test_a_refused_empty_upload_keeps_the_connection(client, sim):
    """A PUT refused before its (empty) body keeps the connection; a refused non-empty one not."""
    assert client.put("/v2/batches/999999/files/a.bin", content=b"").status_code == 404
    assert client.get("/v2/batches").status_code == 200
    assert sim.connections_accepted == 1
    resp = client.put("/v2/batches/999999/files/a.bin", content=b"abc")
    assert resp.status_code == 404 and resp.headers["connection"] == "close"
    assert client.get("/v2/batches").status_code == 200
    assert sim.connections_accepted == 2


def test_chunked_upload_is_refused_with_411(client, sim):
    """A chunked upload body gets 411: the simulator wants each body's length up front."""
    batch_id = create_batch(client)
    resp = client.put(f"/v2/batches/{batch_id}/files/a.bin", content=iter([b"ab", b"cd"]))
    assert resp.status_code == 411
    assert sim.batches[0]["files"] == {}
