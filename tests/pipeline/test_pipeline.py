"""The whole pipeline, without the daemon: ready drops in, finished runs out, clean shutdown."""

from __future__ import annotations

import asyncio

from tests.pipeline.conftest import Rig, run, until
from watcher.model import DropState


def test_drops_go_from_ready_to_complete_and_their_action(rig: Rig):
    """Intake -> submit -> track -> finish, with the parts wired as the daemon wires them."""
    done = rig.tmp / "done"
    rig.rule = {"on_complete": f"move:{done}"}
    rig.sim.options.run_seconds = 0.2
    rig.pipeline_kw = {"track_min_s": 0.05, "track_max_s": 0.2}
    names = ["a", "b", "c"]

    async def scenario() -> None:
        p = rig.build()
        await p.startup()
        task = asyncio.create_task(p.run())
        for name in names:
            await p.on_ready(rig.make_drop(name))
        await until(lambda: all((done / n).exists() for n in names), timeout=15)
        assert await p.drain(5) == 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        states = {d.drop: d.state for d in rig.ledger.all_drops()}
        assert states == dict.fromkeys(names, DropState.COMPLETE)
        assert sorted(r["input_dir"] for r in rig.sim.runs) == [rig.input_dir(n) for n in names]

    run(scenario)


def test_drain_returns_with_requests_still_in_flight_left_submitting(rig: Rig):
    """A POST that outlives shutdown_timeout is left `submitting`, to be reconciled at start."""
    rig.sim.options.latency_ms = 3000

    async def scenario() -> None:
        p = rig.build()
        await p.startup()
        task = asyncio.create_task(p.run())
        await p.on_ready(rig.make_drop("slow"))
        await until(lambda: p.submitter.inflight, what="the POST under way")
        assert await p.drain(0.2) == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert rig.drop("slow").state is DropState.SUBMITTING

    run(scenario)
