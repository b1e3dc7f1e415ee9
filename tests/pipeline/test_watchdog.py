"""systemd's watchdog hears from the daemon only while its loops are alive."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.pipeline.conftest import Rig, run, running, until
from watcher.app import systemd
from watcher.pipeline import submit, track
from watcher.pipeline.state import Unsettled
from watcher.sdnotify import Notifier

FAST_BEAT_S = 0.05


@pytest.fixture(autouse=True)
def fast_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (submit, track, systemd):
        monkeypatch.setattr(module, "BEAT_S", FAST_BEAT_S)


class Socket:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[Socket]:
    s = Socket(tmp_path / "notify")
    yield s
    s.close()


def test_a_stuck_submit_loop_stops_the_watchdog_pings(rig: Rig, tmp_path: Path, sock: Socket):
    """The submit loop hangs: WATCHDOG=1 stops (systemd will restart us) and it is logged."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "100000"})

    async def scenario() -> None:
        p = rig.build()
        hang = asyncio.Event()
        p.reconciler.run_due = hang.wait  # type: ignore[method-assign]
        with capture_logs() as logs:
            async with running(
                p.submitter.run(), p.tracker.run(), systemd.systemd_pings(notifier, p)
            ):
                await until(lambda: "WATCHDOG=1" in sock.drain(), what="pings while alive")
                p.state.needs_reconcile["d-x"] = Unsettled(0.0, "lost")  # the loop hangs now
                await until(lambda: p.stale_loops(0.3) == ["submit"], what="submit stale")
                sock.drain()
                await until(lambda: any(e["event"] == "daemon.stuck" for e in logs))
                await asyncio.sleep(0.3)  # a window in which no ping may arrive
                assert "WATCHDOG=1" not in sock.drain()
                hang.set()
        (stuck,) = [e for e in logs if e["event"] == "daemon.stuck"]
        assert stuck["loops"] == ["submit"] and stuck["log_level"] == "critical"

    run(scenario)


def test_a_hub_paused_on_a_bad_token_keeps_the_loops_alive(rig: Rig):
    """Paused for auth, the loops wait but keep beating: no watchdog restart loop."""
    rig.pipeline_kw = {"probe_s": 3600}

    async def scenario() -> None:
        p = rig.build(token="wrong-token-123")
        await p.on_ready(rig.make_drop("b1"))
        async with running(p.submitter.run(), p.tracker.run()):
            await until(lambda: p.paused, what="paused")
            for _ in range(10):
                await asyncio.sleep(FAST_BEAT_S)
                assert p.stale_loops(6 * FAST_BEAT_S) == []
        assert set(p.state.beats) == {"submit", "track"}

    run(scenario)
