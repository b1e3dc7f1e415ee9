"""sdnotify: exact datagrams on a real AF_UNIX socket, abstract names, watchdog rules, no-ops."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.sdnotify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket in tmp_path (a short temp dir if tmp_path is too long)."""
    path = tmp_path / "notify.sock"
    short_dir = None
    if len(str(path)) > 100:  # sun_path is limited to 108 bytes
        short_dir = Path(tempfile.mkdtemp(prefix="sdn"))
        path = short_dir / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield str(path), sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        if short_dir is not None:
            short_dir.rmdir()


def receive(sock: socket.socket) -> str:
    return sock.recv(65536).decode()


def test_messages_arrive_as_exact_datagrams(notify_socket: tuple[str, socket.socket]) -> None:
    """ready/status/watchdog/stopping send exactly the protocol's KEY=value datagrams."""
    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    notifier.ready()
    notifier.status("3 ready, 1 submitting")
    notifier.watchdog()
    notifier.stopping()
    notifier.notify(READY="1", STATUS="reloaded")
    assert [receive(sock) for _ in range(5)] == [
        "READY=1",
        "STATUS=3 ready, 1 submitting",
        "WATCHDOG=1",
        "STOPPING=1",
        "READY=1\nSTATUS=reloaded",
    ]


def test_reloading_carries_the_monotonic_time(notify_socket: tuple[str, socket.socket]) -> None:
    """reloading sends RELOADING=1 and MONOTONIC_USEC from CLOCK_MONOTONIC in microseconds."""
    path, sock = notify_socket
    before = time.monotonic_ns() // 1000
    Notifier({"NOTIFY_SOCKET": path}).reloading()
    after = time.monotonic_ns() // 1000
    first, second = receive(sock).split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_newlines_in_status_cannot_forge_fields(notify_socket: tuple[str, socket.socket]) -> None:
    """A newline inside a STATUS text is flattened so it cannot inject e.g. STOPPING=1."""
    path, sock = notify_socket
    Notifier({"NOTIFY_SOCKET": path}).status("ok\nSTOPPING=1")
    assert receive(sock) == "STATUS=ok STOPPING=1"


def test_abstract_socket_name() -> None:
    """NOTIFY_SOCKET=@name addresses the abstract namespace ("\\0name")."""
    name = f"aihub-watcher-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        notifier.ready()
        assert receive(sock) == "READY=1"


def test_unset_socket_is_a_no_op() -> None:
    """Without NOTIFY_SOCKET (or with an unsupported one) every call is a silent no-op."""
    for env in ({}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1234"}):
        notifier = Notifier(env)
        assert not notifier.enabled
        notifier.ready()
        notifier.status("x")
        notifier.reloading()
        notifier.watchdog()
        notifier.stopping()
        assert notifier.notify(READY="1") is False


def test_send_failure_never_raises(tmp_path: Path) -> None:
    """A socket path nobody listens on makes sends fail quietly (False), never raise."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert notifier.enabled
    notifier.ready()
    notifier.watchdog()
    assert notifier.notify(READY="1") is False


def test_reads_os_environ_by_default(
    notify_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notifier() with no env argument reads NOTIFY_SOCKET from os.environ."""
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    Notifier().ready()
    assert receive(sock) == "READY=1"


def test_watchdog_interval_is_half_the_timeout() -> None:
    """WATCHDOG_USEC gives a ping interval of half the timeout, in seconds."""
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier(env).watchdog_interval_s == 15.0
    env["WATCHDOG_PID"] = str(os.getpid())
    assert Notifier(env).watchdog_interval_s == 15.0


@pytest.mark.parametrize(
    "env",
    [
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)},
        {},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "not-a-pid"},
    ],
    ids=["pid-mismatch", "unset", "zero", "garbage", "bad-pid"],
)
def test_no_watchdog_when_not_ours(env: dict[str, str]) -> None:
    """A watchdog meant for another PID, or a missing/invalid WATCHDOG_USEC, disables pings."""
    assert Notifier({"NOTIFY_SOCKET": "/run/x", **env}).watchdog_interval_s is None
