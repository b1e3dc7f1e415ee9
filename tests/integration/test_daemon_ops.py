"""The daemon as an operator sees it: a real notify socket for systemd, and a token never shown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.daemon_helpers import (
    DaemonProcess,
    input_dir,
    make_drop,
    start_daemon,
    wait_runs,
    write_config,
)


class NotifySocket:
    """What systemd's end of NOTIFY_SOCKET receives: one datagram per message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def receive(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(fields)

    def wait_for(self, key: str, value: str | None = None, *, after: int = 0) -> int:
        """Index of the first message from `after` on that sets `key` (to `value`)."""

        def found() -> int | None:
            for i, m in enumerate(self.receive()[after:], start=after):
                if key in m and (value is None or m[key] == value):
                    return i + 1  # 1-based, so index 0 is truthy
            return None

        return wait_until(found, timeout=20, what=f"{key}={value} on NOTIFY_SOCKET") - 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


def test_systemd_hears_ready_status_watchdog_reload_and_stopping(sim, tmp_path, token, notify):
    """READY=1 after the startup scan, STATUS= counters, WATCHDOG=1, RELOADING=1, STOPPING=1."""
    watch = tmp_path / "w"
    watch.mkdir()
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=tmp_path / "s"
    )
    daemon = DaemonProcess(
        config,
        env={"AIHUB_TEST_TOKEN": token, "WATCHDOG_USEC": "400000"},
        notify_socket=notify.path,
    )
    ready = notify.wait_for("READY", "1")
    daemon.wait_ready()
    status = notify.wait_for("STATUS")
    assert notify.messages[status]["STATUS"] == "idle"
    notify.wait_for("WATCHDOG", "1", after=ready)
    make_drop(watch, "b1")
    notify.wait_for("STATUS", "complete 1")
    daemon.signal(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING", "1", after=ready + 1)
    assert int(notify.messages[reloading]["MONOTONIC_USEC"]) > 0
    notify.wait_for("READY", "1", after=reloading)
    daemon.signal(signal.SIGTERM)
    notify.wait_for("STOPPING", "1")
    assert daemon.wait() == 0


def test_the_token_is_masked_even_in_a_drop_name(sim, tmp_path, token):
    """A folder named after the token runs, yet no log line ever shows the token."""
    watch = tmp_path / "w"
    watch.mkdir()
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=tmp_path / "s"
    )
    daemon = start_daemon(config, token)
    name = f"scan-{token}"
    make_drop(watch, name)
    wait_runs(sim, {input_dir(name)})
    daemon.wait_for("run.submitted")
    assert daemon.stop() == 0
    output = daemon.output()
    assert "scan-***" in output
    assert token not in output


def test_a_folder_name_that_is_not_utf8_costs_no_other_drop(sim, tmp_path, token):
    """bad-\\xff\\xfe renamed in beside three good drops: the good ones run, the bad one is
    `rejected` with one error line naming it, and `status` shows why, across a restart."""
    watch = tmp_path / "w"
    watch.mkdir()
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=tmp_path / "s"
    )
    daemon = start_daemon(config, token)
    staging = tmp_path / "staging"
    staging.mkdir()
    bad = os.path.join(os.fsencode(staging), b"bad-\xff\xfe")
    os.mkdir(bad)
    with open(os.path.join(bad, b"page.pdf"), "wb") as f:
        f.write(b"%PDF")
    os.rename(bad, os.path.join(os.fsencode(watch), b"bad-\xff\xfe"))
    good = ["good-1", "good-2", "good-3"]
    for name in good:
        make_drop(watch, name)
    wait_runs(sim, {input_dir(n) for n in good})
    (error,) = daemon.wait_for("drop.rejected")
    assert error["drop"] == "bad-\\xff\\xfe" and "not valid UTF-8" in error["error"]
    assert daemon.stop() == 0
    again = start_daemon(config, token)
    make_drop(watch, "after-restart")
    wait_runs(sim, {input_dir("after-restart")})
    assert again.stop() == 0
    assert not again.find("drop.rejected")  # known from the ledger: no second error line
    assert len(sim.runs) == 4
    status = subprocess.run(
        [sys.executable, "-m", "watcher", "status", "--state", "rejected", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "bad-\\xff\\xfe" in status.stdout and "not valid UTF-8" in status.stdout
