"""Track: every run is followed to its end; each status change is recorded and logged once."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from tests.pipeline.conftest import Rig, run, running, until
from watcher.model import Drop, DropState


async def _submit(rig: Rig, *names: str) -> None:
    p = rig.pipeline
    for name in names:
        await p.on_ready(rig.make_drop(name))
    await asyncio.sleep(0)


def _state(rig: Rig, name: str) -> DropState:
    return rig.drop(name).state


def test_runs_are_followed_to_complete_and_logged_once(rig: Rig):
    """RUNNING -> COMPLETE: the drop is `complete`, one run.status line, no longer tracked."""
    rig.sim.options.run_seconds = 0.3
    rig.pipeline_kw = {"track_min_s": 0.05, "track_max_s": 0.2}

    async def scenario() -> None:
        p = rig.build()
        await _submit(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run(), p.tracker.run()):
                await until(lambda: _state(rig, "b1") is DropState.COMPLETE, what="complete")
        statuses = [e for e in logs if e["event"] == "run.status"]
        assert [e["status"] for e in statuses] == ["COMPLETE"]
        assert statuses[0]["previous_status"] == "RUNNING"
        assert rig.drop("b1").post_action_done  # on_complete: keep is done at once
        assert p.state.tracked == {}

    run(scenario)


def test_a_run_stopped_at_a_checkpoint_needs_review_and_is_still_followed(rig: Rig):
    """STOPPED_AT_CHECKPOINT -> needs_review (warning); when a person resumes it, COMPLETE."""
    rig.sim.options.run_seconds = 3600
    rig.pipeline_kw = {"track_min_s": 0.05, "track_max_s": 0.2}

    async def scenario() -> None:
        p = rig.build()
        await _submit(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run(), p.tracker.run()):
                await until(lambda: rig.sim.runs, what="the run")
                run_id = rig.sim.runs[0]["id"]
                rig.sim.set_run_status(run_id, "STOPPED_AT_CHECKPOINT")
                await until(lambda: _state(rig, "b1") is DropState.NEEDS_REVIEW)
                assert rig.drop("b1").id in p.state.tracked
                rig.sim.set_run_status(run_id, "COMPLETE")
                await until(lambda: _state(rig, "b1") is DropState.COMPLETE)
        levels = [(e["status"], e["log_level"]) for e in logs if e["event"] == "run.status"]
        assert levels == [("STOPPED_AT_CHECKPOINT", "warning"), ("COMPLETE", "info")]

    run(scenario)


def test_a_failed_run_marks_the_drop_run_failed(rig: Rig):
    """A run that ends FAILED: `run_failed`, logged at warning."""
    rig.sim.options.run_seconds = 0.1
    rig.sim.options.fail_runs = 1.0
    rig.pipeline_kw = {"track_min_s": 0.05, "track_max_s": 0.2}

    async def scenario() -> None:
        p = rig.build()
        await _submit(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run(), p.tracker.run()):
                await until(lambda: _state(rig, "b1") is DropState.RUN_FAILED)
        (line,) = [e for e in logs if e["event"] == "run.status"]
        assert line["status"] == "FAILED" and line["log_level"] == "warning"

    run(scenario)


def test_a_burst_of_runs_is_polled_with_one_listing_not_a_get_each(rig: Rig):
    """Many new runs of one deployment cost one list call per pass, not one get per run."""
    rig.sim.options.run_seconds = 0.5
    rig.pipeline_kw = {"track_min_s": 0.05, "track_max_s": 0.2}
    names = [f"b{i}" for i in range(12)]

    async def scenario() -> None:
        p = rig.build()
        await _submit(rig, *names)
        async with running(p.submitter.run(), p.tracker.run()):
            await until(
                lambda: all(_state(rig, n) is DropState.COMPLETE for n in names), timeout=15
            )
        gets = [r for r in rig.sim.requests if r.method == "GET" and "/runs/" in r.path]
        lists = [r for r in rig.sim.requests if r.method == "GET" and r.path.endswith("/runs")]
        assert gets == [] and lists

    run(scenario)


def test_a_stream_of_submissions_gets_one_pass_per_min_interval(rig: Rig):
    """New runs are looked at within track_min_s, not at once after each pass that saw some
    POSTs: twenty drops arriving over a second, each answer 100 ms late, get a pass every
    track_min_s after the last, not back-to-back passes over every tracked run."""
    rig.sim.options.run_seconds = 3600
    rig.sim.options.latency_ms = 100
    rig.pipeline_kw = {"track_min_s": 0.25, "track_max_s": 2.0}

    async def scenario() -> None:
        p = rig.build()
        passes: list[int] = []
        poll = p.tracker.poll

        async def counted(drops: list[Drop]) -> bool:
            passes.append(len(drops))
            return await poll(drops)

        p.tracker.poll = counted  # type: ignore[method-assign]
        async with running(p.submitter.run(), p.tracker.run()):
            started = time.monotonic()
            for i in range(20):
                await p.on_ready(rig.make_drop(f"b{i}"))
                await asyncio.sleep(0.05)
            await until(lambda: len(rig.sim.runs) == 20, what="20 runs")
            await until(lambda: passes and passes[-1] == 20, what="a pass over all 20")
            elapsed = time.monotonic() - started
        assert len(passes) <= elapsed / 0.25 + 3, (len(passes), elapsed)

    run(scenario)
