"""One daemon per state directory; a second one refuses at once, the first keeps working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.daemon_helpers import DaemonProcess, input_dir, make_drop, wait_runs, write_config


def _config(tmp_path: Path, sim) -> Path:
    watch = tmp_path / "w"
    watch.mkdir(exist_ok=True)
    return write_config(tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=tmp_path / "s")


def test_a_second_daemon_on_the_same_state_dir_exits_2_with_one_line(sim, tmp_path, token):
    """The second `run` says who holds the state dir and leaves; the first one carries on."""
    config = _config(tmp_path, sim)
    first = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    first.wait_ready()
    second = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    assert second.wait(timeout=20) == 2
    (line,) = second.output().splitlines()
    event = json.loads(line)
    assert event["event"] == "daemon.already_running" and event["level"] == "error"
    assert event["error"] == (
        f"another aihub-watcher (pid {first.proc.pid}) holds {tmp_path / 's'}"
    )
    status = subprocess.run(
        [sys.executable, "-m", "watcher", "status", "--json", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    make_drop(tmp_path / "w", "after")
    wait_runs(sim, {input_dir("after")})
    assert first.stop() == 0
    assert not first.find("daemon.crashed")


def test_kill_9_releases_the_lock(sim, tmp_path, token):
    """A daemon killed with SIGKILL leaves no stale lock: the next one starts and runs drops."""
    config = _config(tmp_path, sim)
    first = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    first.wait_ready()
    first.kill()
    second = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    second.wait_ready()
    make_drop(tmp_path / "w", "b1")
    wait_runs(sim, {input_dir("b1")})
    assert second.stop() == 0
