"""The daemon under systemd: `python -m watcher run` with stdout on a stream socket named by
JOURNAL_STREAM, as journald runs it; every line it writes carries its level's priority."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import wait_until
from tests.daemon_helpers import make_drop, write_config
from tests.journal_helpers import (
    StreamReader,
    assert_priorities_match_levels,
    journal_stream_of,
    parse_prefixed,
)


def events(reader: StreamReader) -> list[tuple[int, dict[str, Any]]]:
    return parse_prefixed(reader.complete_lines())


def seen(reader: StreamReader, event: str, **fields: Any) -> bool:
    return any(
        e["event"] == event and all(e.get(k) == v for k, v in fields.items())
        for _, e in events(reader)
    )


def test_daemon_lines_reach_journald_at_their_priority(
    tmp_path: Path, sim: Any, token: str
) -> None:
    """A failed run lands at warning, a 403 pause at err, startup at info, fs events at debug:
    `journalctl -p err` would show exactly the error lines."""
    watch = tmp_path / "w"
    watch.mkdir()
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=tmp_path / "s"
    )
    sim.options.fail_runs = 1.0
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    env.update(AIHUB_TEST_TOKEN=token, JOURNAL_STREAM=journal_stream_of(theirs))
    with theirs:
        # As the unit runs it: stdout and stderr on the journal connection, default format.
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(config), "--log-level", "debug"],
            stdout=theirs.fileno(),
            stderr=theirs.fileno(),
            env=env,
        )
    reader = StreamReader(ours)
    try:
        wait_until(lambda: seen(reader, "daemon.ready"), timeout=30, what="daemon.ready")
        make_drop(watch, "fails")
        wait_until(lambda: seen(reader, "run.status", status="FAILED"), timeout=30, what="FAILED")
        sim.options.forbid_runs = True
        make_drop(watch, "forbidden")
        wait_until(lambda: seen(reader, "hub.paused"), timeout=30, what="hub.paused")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        data = reader.join()  # EOF once the daemon is gone; closes our end
    lines = parse_prefixed(data)
    assert assert_priorities_match_levels(lines) >= {"debug", "info", "warning", "error"}
    priority = {(e["event"], e.get("status")): p for p, e in lines}
    assert priority["daemon.ready", None] == priority["daemon.stopped", None] == 6
    assert (priority["run.status", "FAILED"], priority["hub.paused", None]) == (4, 3)
    assert priority["drop.detected", None] == 7
    assert token.encode() not in data
