"""Finish: on_complete / on_failure run once the run has ended; housekeeping forgets gone drops."""

from __future__ import annotations

import asyncio
import shutil

from structlog.testing import capture_logs

from tests.pipeline.conftest import DEPLOYMENT, Rig, run, running, until
from watcher.config import parse_config
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


def test_a_failed_action_is_retried_with_back_off_until_it_works(rig: Rig):
    """The target cannot be created: post_action.failed, the folder stays, and the action is
    tried again with back-off; once the obstacle is gone it completes without a restart."""
    blocker = rig.tmp / "not-a-dir"
    blocker.write_text("a file where the target folder should be")
    rig.rule = {"on_complete": f"move:{blocker}/done"}
    rig.pipeline_kw = {"post_action_retry_s": 0.05}

    async def scenario() -> None:
        p = rig.build()
        d = _ended(rig, "b1")
        with capture_logs() as logs:
            async with running(p.finisher.run()):
                await p.finisher.post_run(d)
                assert (rig.watch / "b1").exists()
                assert not rig.ledger.all_drops()[0].post_action_done
                await until(lambda: sum(e["event"] == "post_action.failed" for e in logs) >= 2)
                blocker.unlink()
                # The move lands on disk (a worker thread) a moment before the finisher logs it.
                await until(lambda: any(e["event"] == "post_action.done" for e in logs))
        assert (blocker / "done" / "b1" / "page-1.pdf").exists()
        failures = [e for e in logs if e["event"] == "post_action.failed"]
        assert failures[0]["log_level"] == "error" and failures[0]["attempt"] == 1
        assert failures[1]["attempt"] == 2
        assert failures[1]["retry_in_s"] >= 0.025
        (done,) = [e for e in logs if e["event"] == "post_action.done"]
        assert done["attempt"] > 2 and not done["already_done"]

    run(scenario)


def test_a_move_that_happened_before_a_crash_is_not_a_failure(rig: Rig):
    """The folder was moved but the crash came before the ledger knew: done, not failed."""
    done_dir = rig.tmp / "done"
    rig.rule = {"on_complete": f"move:{done_dir}"}

    async def scenario() -> None:
        p = rig.build()
        _ended(rig, "b1")
        done_dir.mkdir()
        (rig.watch / "b1").rename(done_dir / "b1")  # what the action did before the crash
        with capture_logs() as logs:
            await p.finisher.finish_interrupted()
        assert [e["event"] for e in logs] == ["post_action.done"]
        assert logs[0]["already_done"] and logs[0]["target"] == str(done_dir / "b1")
        assert rig.ledger.find_active("main", "b1") is None

    run(scenario)


def test_a_name_clash_gets_a_suffix_never_a_merge(rig: Rig):
    """Earlier drops of the same name in the target: the new one gets -<drop id>, then -2."""
    done_dir = rig.tmp / "done"
    rig.rule = {"on_complete": f"move:{done_dir}"}

    async def scenario() -> None:
        p = rig.build()
        d = _ended(rig, "b1")
        for name in ("b1", f"b1-{d.id}"):
            (done_dir / name).mkdir(parents=True)
            (done_dir / name / "older.pdf").write_text("an earlier drop")
        await p.finisher.post_run(d)
        target = done_dir / f"b1-{d.id}-2"
        assert sorted(x.name for x in target.iterdir()) == ["page-1.pdf"]
        for name in ("b1", f"b1-{d.id}"):
            assert sorted(x.name for x in (done_dir / name).iterdir()) == ["older.pdf"]

    run(scenario)


def test_delete_of_a_folder_already_gone_is_done(rig: Rig):
    """on_complete: delete after the folder vanished (crash mid-action): done, not failed."""
    rig.rule = {"on_complete": "delete"}

    async def scenario() -> None:
        p = rig.build()
        d = _ended(rig, "b1")
        shutil.rmtree(rig.watch / "b1")
        with capture_logs() as logs:
            await p.finisher.post_run(d)
        assert [(e["event"], e["already_done"]) for e in logs] == [("post_action.done", True)]

    run(scenario)


def test_actions_use_the_path_recorded_at_detection_not_the_rule_now(rig: Rig):
    """A reload moves `watch`; delete still removes the drop that ran, not a same-named folder
    in the new watch folder."""
    rig.rule = {"on_complete": "delete"}

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("b1"))
        await asyncio.sleep(0)
        new_watch = rig.tmp / "new-watch"
        (new_watch / "b1").mkdir(parents=True)
        (new_watch / "b1" / "unsubmitted.pdf").write_text("not run yet")
        text = rig.config_text().replace(str(rig.watch), str(new_watch))
        p.update_config(parse_config(text, path=rig.tmp / "c.yaml", env={"AIHUB_TEST_TOKEN": "t"}))
        led = rig.ledger
        d = rig.drop("b1")
        assert d.local_path == str(rig.watch / "b1")
        led.begin_submit(d.id, now=1.0)
        led.mark_submitted(d.id, run_id="r", run_status="RUNNING", response="{}", now=2.0)
        ended = led.set_run_status(d.id, run_status="COMPLETE", response="{}", now=3.0)
        await p.finisher.post_run(ended)
        assert not (rig.watch / "b1").exists()
        assert (new_watch / "b1" / "unsubmitted.pdf").exists()

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


def test_a_drop_waiting_for_review_is_not_forgotten_while_its_run_can_resume(rig: Rig):
    """needs_review, folder gone: housekeeping keeps it; when the run ends it is recorded."""
    rig.sim.options.run_seconds = 3600
    rig.pipeline_kw = {"track_min_s": 0.05, "track_max_s": 0.2}

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("b1"))
        await asyncio.sleep(0)
        async with running(p.submitter.run(), p.tracker.run()):
            await until(lambda: rig.sim.runs, what="the run")
            run_id = rig.sim.runs[0]["id"]
            rig.sim.set_run_status(run_id, "STOPPED_AT_CHECKPOINT")
            await until(lambda: rig.drop("b1").state is DropState.NEEDS_REVIEW)
            shutil.rmtree(rig.watch / "b1")
            for _ in range(3):
                await p.housekeeper.one_round()
            assert rig.drop("b1").state is DropState.NEEDS_REVIEW
            rig.sim.set_run_status(run_id, "COMPLETE")
            await until(lambda: rig.drop("b1").state is DropState.COMPLETE)

    run(scenario)
