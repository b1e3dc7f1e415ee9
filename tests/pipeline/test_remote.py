"""The remote check on its own: what AI Hub answers decides when a drive drop may run."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from tests.pipeline.conftest import REMOTE, Rig, run, running, until
from watcher.model import DropState


def _drive(rig: Rig) -> None:
    """Point the simulator's drive at a folder whose `REMOTE` subfolder is the watch folder."""
    drive = rig.tmp / "drive"
    (drive / REMOTE).parent.mkdir(parents=True, exist_ok=True)
    (drive / REMOTE).symlink_to(rig.watch, target_is_directory=True)
    rig.sim.options.drive_root = drive


def test_a_drop_whose_files_are_all_there_is_ready_at_once(rig: Rig):
    """Instantly synced: one pass of HEADs, then `ready` (the submit loop is woken)."""
    rig.rule = {"verify_remote": True}
    _drive(rig)

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("b1", {"a.pdf": b"1", "b.pdf": b"22", "c.pdf": b"333"}))
        await asyncio.sleep(0)
        assert rig.drop("b1").state is DropState.WAITING_REMOTE
        started = time.monotonic()
        async with running(p.remote.run()):
            await until(lambda: rig.drop("b1").state is DropState.READY)
        assert time.monotonic() - started < 1.0
        heads = [r for r in rig.sim.requests if r.method == "HEAD"]
        assert len(heads) == 3

    run(scenario)


def test_a_token_refused_on_head_pauses_the_hub(rig: Rig):
    """401 on the remote check pauses submissions as a 401 on a POST would."""
    rig.rule = {"verify_remote": True}
    rig.pipeline_kw = {"probe_s": 3600}
    _drive(rig)

    async def scenario() -> None:
        p = rig.build(token="wrong-token-123")
        await p.on_ready(rig.make_drop("b1"))
        await asyncio.sleep(0)
        with capture_logs() as logs:
            async with running(p.remote.run()):
                await until(lambda: p.paused, what="paused")
        assert rig.drop("b1").state is DropState.WAITING_REMOTE
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["hub.paused"]

    run(scenario)


def test_past_the_timeout_one_error_names_the_missing_files_and_checking_goes_on(rig: Rig):
    """verify_timeout_seconds passed: one error line naming what is missing; still waiting."""
    rig.rule = {"verify_remote": True, "verify_timeout_seconds": 1}
    rig.sim.options.drive_root = rig.tmp / "empty-drive"

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("b1", {f"p{i}.pdf": b"x" for i in range(12)}))
        await asyncio.sleep(0)
        with capture_logs() as logs:
            async with running(p.remote.run()):
                await until(lambda: any(e["event"] == "remote.timed_out" for e in logs), timeout=15)
                heads = len([r for r in rig.sim.requests if r.method == "HEAD"])
                await until(
                    lambda: len([r for r in rig.sim.requests if r.method == "HEAD"]) > heads,
                    timeout=40,
                    what="another pass after the timeout",
                )
        (error,) = [e for e in logs if e["event"] == "remote.timed_out"]
        assert len(error["missing"]) == 10 and error["more"] == 2
        assert rig.drop("b1").state is DropState.WAITING_REMOTE
        assert "12 of 12 files not synced" in (rig.drop("b1").last_error or "")

    run(scenario, timeout=90)
