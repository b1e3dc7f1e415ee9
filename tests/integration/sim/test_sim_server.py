"""The server's lifecycle: serve_in_thread (start, prompt stop, the port), run_forever."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import wait_until
from tests.sim_helpers import AUTH, PROJECT_ROOT, TOKEN, submit
from watcher.sim import SimOptions, serve_in_thread


def test_serve_in_thread_releases_the_port():
    """After the context exits nothing listens on the simulator's port any more."""
    with serve_in_thread(SimOptions(token=TOKEN)) as s:
        parts = urlsplit(s.url)
        assert parts.hostname == "127.0.0.1" and parts.path == "/api"
    assert parts.port is not None
    with pytest.raises(OSError):
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()


def test_port_in_use_raises():
    """serve_in_thread raises OSError (and leaves no thread) when the port is taken."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError), serve_in_thread(SimOptions(token=TOKEN, port=port)):
            pass


def test_stop_does_not_wait_for_a_delayed_answer():
    """Leaving serve_in_thread stops promptly even while a request sleeps in latency_ms."""
    with serve_in_thread(SimOptions(token=TOKEN, latency_ms=30_000)) as s:
        parts = urlsplit(s.url)
        assert parts.hostname is not None and parts.port is not None
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        request = (
            f"GET /api/v2/apps/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        sock.sendall(request.encode())
        wait_until(lambda: s.connections_accepted == 1, timeout=5, what="connection accepted")
        started = time.monotonic()
    assert time.monotonic() - started < 5
    with sock:
        assert sock.recv(1024) == b""


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"no stdout line within {timeout}s")
    return proc.stdout.readline()


def test_run_forever_prints_url_first_and_exits_0_on_sigterm(tmp_path):
    """run_forever prints the API root first, serves, and exits 0 on SIGTERM."""
    record = tmp_path / "r.jsonl"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from watcher.sim import SimOptions, run_forever\n"
        f"sys.exit(run_forever(SimOptions(token={TOKEN!r}, record=Path({str(record)!r}))))\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        url = _read_line(proc, timeout=20).strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as c:
            assert submit(c, input_dir="x").status_code == 202
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == "" and err == ""
    assert len(record.read_text(encoding="utf-8").splitlines()) == 1
