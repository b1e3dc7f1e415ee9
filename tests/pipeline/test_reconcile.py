"""Reconcile: a POST whose outcome is unknown is settled by listing runs, never by posting again."""

from __future__ import annotations

import time

from structlog.testing import capture_logs

from tests.pipeline.conftest import DEPLOYMENT, Rig, run
from watcher.model import Drop, DropState
from watcher.pipeline.state import Unsettled
from watcher.pipeline.tags import drop_tag


def _submitting(rig: Rig, name: str, *, intent_at: float | None = None) -> Drop:
    """A drop whose POST went out but whose answer never came (as after a crash)."""
    led = rig.ledger
    d = led.record_ready(
        rule="main",
        drop=name,
        fingerprint="f" * 64,
        input_dir=rig.input_dir(name),
        deployment_id=DEPLOYMENT,
    )
    return led.begin_submit(d.id, now=time.time() if intent_at is None else intent_at)


def _post(rig: Rig, name: str, *, tags: list[str]) -> str:
    with rig.client() as client:
        run_ = client.run_deployment(
            deployment_id=DEPLOYMENT, input_dir=rig.input_dir(name), settings={"tags": tags}
        )
    return run_.id


async def _reconcile(rig: Rig, *drops: Drop) -> None:
    p = rig.pipeline
    for d in drops:
        p.state.needs_reconcile[d.id] = Unsettled(0.0, "HTTP 502: bad gateway")
    await p.reconciler.run_due()


def test_the_run_carrying_the_drop_tag_is_adopted_without_a_new_post(rig: Rig):
    """The lost response's run is found by tag: `submitted` with its id, and no second POST."""

    async def scenario() -> None:
        p = rig.build()
        d = _submitting(rig, "b1")
        run_id = _post(rig, "b1", tags=["theirs", drop_tag(d.id)])
        with capture_logs() as logs:
            await _reconcile(rig, d)
        after = rig.drop("b1")
        assert after.state is DropState.SUBMITTED and after.run_id == run_id
        assert after.id in p.state.tracked
        assert len(rig.posts()) == 1
        assert [e["event"] for e in logs] == ["run.adopted"]

    run(scenario)


def test_of_two_runs_with_one_tag_the_oldest_is_adopted(rig: Rig):
    """A duplicate is reported at error level, and the first run created is the one kept."""

    async def scenario() -> None:
        rig.build()
        d = _submitting(rig, "b1")
        oldest = _post(rig, "b1", tags=[drop_tag(d.id)])
        newer = _post(rig, "b1", tags=[drop_tag(d.id)])
        with capture_logs() as logs:
            await _reconcile(rig, d)
        assert rig.drop("b1").run_id == oldest
        (dup,) = [e for e in logs if e["event"] == "run.duplicate"]
        assert dup["log_level"] == "error" and dup["run_ids"] == [oldest, newer]

    run(scenario)


def test_an_untagged_run_is_adopted_only_if_it_started_after_the_intent(rig: Rig):
    """A run without our tag on the same input_dir counts only when it is not older than us."""

    async def scenario() -> None:
        rig.build()
        # Recorded an hour from now: the untagged run below started long before this intent.
        future = _submitting(rig, "early", intent_at=time.time() + 3600)
        _post(rig, "early", tags=[])
        recent = _submitting(rig, "late")
        late_run = _post(rig, "late", tags=[])
        await _reconcile(rig, future, recent)
        assert rig.drop("early").state is DropState.READY
        assert rig.drop("early").run_id is None
        assert rig.drop("late").state is DropState.SUBMITTED
        assert rig.drop("late").run_id == late_run

    run(scenario)


def test_no_run_found_re_arms_the_drop_with_back_off(rig: Rig):
    """Nothing listed: the drop is `ready` again, due after a delay, its attempt kept."""

    async def scenario() -> None:
        rig.build()
        d = _submitting(rig, "b1")
        with capture_logs() as logs:
            await _reconcile(rig, d)
        after = rig.drop("b1")
        assert after.state is DropState.READY and after.attempts == 1
        assert after.next_attempt_at is not None and after.next_attempt_at > time.time()
        assert [e["event"] for e in logs] == ["reconcile.not_found"]
        assert rig.posts() == []

    run(scenario)


def test_no_run_found_on_the_last_attempt_fails_the_drop(rig: Rig):
    """At max_attempts, a drop whose run cannot be found is `failed`, not posted again."""
    rig.rule = {"max_attempts": 1}

    async def scenario() -> None:
        rig.build()
        d = _submitting(rig, "b1")
        await _reconcile(rig, d)
        assert rig.drop("b1").state is DropState.FAILED
        assert rig.posts() == []

    run(scenario)


def test_a_failed_listing_keeps_the_drop_submitting_and_tries_later(rig: Rig):
    """The listing itself fails (hub down): nothing is decided; the drop waits for a retry."""

    async def scenario() -> None:
        p = rig.build()
        d = _submitting(rig, "b1")
        rig.sim.options.token = "the hub rejects everyone now"
        with capture_logs() as logs:
            await _reconcile(rig, d)
        assert rig.drop("b1").state is DropState.SUBMITTING
        assert p.state.needs_reconcile[d.id].due_mono > time.monotonic()
        failed = next(e for e in logs if e["event"] == "reconcile.failed")
        assert failed["drops"] == 1 and failed["deployment_id"] == DEPLOYMENT
        # A 401 on the listing pauses the hub like one on a POST.
        assert p.paused
        p.gate.stop()

    run(scenario)


def test_startup_queues_every_drop_left_submitting(rig: Rig):
    """After a crash, each `submitting` drop is listed for before anything is posted."""

    async def scenario() -> None:
        p = rig.build()
        d = _submitting(rig, "b1")
        await p.startup()
        assert d.id in p.state.needs_reconcile
        assert p.is_known("main", "b1")

    run(scenario)
