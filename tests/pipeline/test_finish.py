"""Finish: on_complete / on_failure run once the run has ended; housekeeping forgets gone drops."""

from __future__ import annotations

import asyncio
import shutil

from structlog.testing import capture_logs

from tests.pipeline.conftest import DEPLOYMENT, Rig, run, running, until
from watcher.model import Drop, DropState


def _ended(rig: Rig, name: str, status: str = "COMPLETE") -> Drop:
    """A drop whose run has just ended with `status` (the tracker's view)."""
    rig.make_drop(name)
    led = rig.ledger
    d = led.record_ready(
        rule="main",
        drop=name,
        fingerprint="f" * 64,
        input_dir=rig.input_dir(name),
        deployment_id=DEPLOYMENT,
    )
    led.begin_submit(d.id, now=1.0)
    led.mark_submitted(d.id, run_id="r-" + name, run_status="RUNNING", response="{}", now=2.0)
    return led.set_run_status(d.id, run_status=status, response="{}", now=3.0)


def test_on_complete_delete_removes_the_drop_and_forgets_it(rig: Rig):
    """delete: the folder is gone, the row archived, and the detector told to forget it."""
    rig.rule = {"on_complete": "delete"}
    forgotten: list[tuple[str, str]] = []

    async def scenario() -> None:
        p = rig.build()
        p.set_forget(lambda rule, drop: forgotten.append((rule, drop)))
        d = _ended(rig, "b1")
        with capture_logs() as logs:
            await p.finisher.post_run(d)
        assert not (rig.watch / "b1").exists()
        assert rig.ledger.find_active("main", "b1") is None
        assert forgotten == [("main", "b1")]
        assert [e["event"] for e in logs] == ["post_action.done"]

    run(scenario)


def test_on_complete_move_puts_the_drop_aside_with_a_suffix_on_a_clash(rig: Rig):
    """move: the folder lands in the target; a name already there gets the drop id appended."""
    done = rig.tmp / "done"
    rig.rule = {"on_complete": f"move:{done}"}

    async def scenario() -> None:
        p = rig.build()
        (done / "b1").mkdir(parents=True)
        d = _ended(rig, "b1")
        with capture_logs() as logs:
            await p.finisher.post_run(d)
        assert (done / f"b1-{d.id}" / "page-1.pdf").exists()
        assert list((done / "b1").iterdir()) == []
        assert logs[0]["target"] == str(done / f"b1-{d.id}")

    run(scenario)


def test_on_failure_applies_to_runs_that_did_not_complete(rig: Rig):
    """A FAILED run takes on_failure, not on_complete."""
    failed_dir = rig.tmp / "failed"
    rig.rule = {"on_complete": "delete", "on_failure": f"move:{failed_dir}"}

    async def scenario() -> None:
        p = rig.build()
        d = _ended(rig, "b1", status="FAILED")
        assert d.state is DropState.RUN_FAILED
        await p.finisher.post_run(d)
        assert (failed_dir / "b1" / "page-1.pdf").exists()

    run(scenario)


def test_interrupted_post_run_actions_are_finished_at_startup(rig: Rig):
    """A run ended but the action never ran (crash): the pipeline applies it when it starts."""
    done = rig.tmp / "done"
    rig.rule = {"on_complete": f"move:{done}"}

    async def scenario() -> None:
        p = rig.build()
        _ended(rig, "b1")
        await p.finisher.finish_interrupted()
        assert (done / "b1").exists()
        assert rig.ledger.all_drops()[0].post_action_done

    run(scenario)


def test_a_failed_action_is_logged_and_the_drop_left_in_place(rig: Rig):
    """The target cannot be created: post_action.failed at error level; the folder stays."""
    blocker = rig.tmp / "not-a-dir"
    blocker.write_text("a file where the target folder should be")
    rig.rule = {"on_complete": f"move:{blocker}/done"}

    async def scenario() -> None:
        p = rig.build()
        d = _ended(rig, "b1")
        with capture_logs() as logs:
            await p.finisher.post_run(d)
        assert (rig.watch / "b1").exists()
        assert [(e["event"], e["log_level"]) for e in logs] == [("post_action.failed", "error")]

    run(scenario)


def test_housekeeping_forgets_a_finished_drop_gone_for_two_rounds(rig: Rig):
    """A finished drop whose folder is deleted is forgotten after two rounds, not one."""

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("warmup"))  # records the watch root's device
        await asyncio.sleep(0)
        _ended(rig, "b1")
        shutil.rmtree(rig.watch / "b1")
        with capture_logs() as logs:
            await p.housekeeper.one_round()
            assert rig.ledger.find_active("main", "b1") is not None
            await p.housekeeper.one_round()
        assert rig.ledger.find_active("main", "b1") is None
        assert [e["event"] for e in logs] == ["drop.forgotten"]

    run(scenario)


def test_housekeeping_forgets_nothing_while_the_watch_root_is_missing(rig: Rig):
    """An unmounted share (root gone) proves nothing: finished drops are kept."""

    async def scenario() -> None:
        p = rig.build()
        _ended(rig, "b1")
        shutil.rmtree(rig.watch)
        for _ in range(3):
            await p.housekeeper.one_round()
        assert rig.ledger.find_active("main", "b1") is not None

    run(scenario)


def test_housekeeping_runs_on_its_interval(rig: Rig):
    """The loop itself runs rounds every housekeeping_s."""
    rig.pipeline_kw = {"housekeeping_s": 0.05}

    async def scenario() -> None:
        p = rig.build()
        _ended(rig, "b1")
        shutil.rmtree(rig.watch / "b1")
        async with running(p.housekeeper.run()):
            await until(lambda: rig.ledger.find_active("main", "b1") is None, what="forgotten")

    run(scenario)
