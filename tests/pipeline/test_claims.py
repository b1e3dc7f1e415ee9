"""Claims in the pipeline (a shared PostgreSQL ledger): a silent host's drops are taken over,
its POSTs in flight reconciled by run tag before anything is posted again."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from structlog.testing import capture_logs

from tests.conftest import wait_until
from tests.pipeline.conftest import DEPLOYMENT, Rig, run, running, until
from watcher.ledger import ClaimLostError, Ledger
from watcher.model import Drop, DropState, SubmittedRun
from watcher.pipeline.tags import drop_tag

LEASE_S = 30.0


def _ghost_submitting(rig: Rig, ghost: Ledger, name: str) -> Drop:
    """A drop the other host claimed and began to post (its intent recorded)."""
    d = ghost.record_ready(
        rule="main",
        drop=name,
        fingerprint="f" * 64,
        input_dir=rig.input_dir(name),
        deployment_id=DEPLOYMENT,
    )
    assert d.id in {x.id for x in ghost.due(time.time())}
    return ghost.begin_submit(d.id, now=time.time())


def _post(rig: Rig, name: str, drop_id: str) -> str:
    with rig.client() as client:
        run_ = client.run_deployment(
            deployment_id=DEPLOYMENT,
            input_dir=rig.input_dir(name),
            settings={"tags": [drop_tag(drop_id)]},
        )
    return run_.id


@pytest.fixture
def shared(rig: Rig, pg_dsn: str) -> Rig:
    rig.dsn = pg_dsn
    return rig


def test_a_silent_hosts_posts_in_flight_are_reconciled_not_posted_again(shared: Rig, pg_dsn):
    """The other host died mid-POST: after its lease, this host adopts the run that went out
    (by its tag) and re-arms the drop whose POST never arrived; the dead host's late answer
    is refused."""
    rig = shared
    past = time.time() - 2 * LEASE_S
    with Ledger.on_postgres(pg_dsn) as ghost:
        ghost.act_as("ghost", lease_s=LEASE_S, clock=lambda: past)
        sent = _ghost_submitting(rig, ghost, "sent")
        lost = _ghost_submitting(rig, ghost, "lost")
        run_id = _post(rig, "sent", sent.id)

        async def scenario() -> None:
            p = rig.build()
            p.claims.take_over()
            assert set(p.state.needs_reconcile) == {sent.id, lost.id}
            await p.reconciler.run_due()
            adopted, rearmed = rig.drop("sent"), rig.drop("lost")
            assert (adopted.state, adopted.run_id) == (DropState.SUBMITTED, run_id)
            assert (adopted.claimed_by, adopted.submitted_by) == ("host-b", "ghost")
            assert rearmed.state is DropState.READY and rearmed.claimed_by == "host-b"
            assert len(rig.posts()) == 1

        run(scenario)
        with pytest.raises(ClaimLostError, match="host-b holds it"):
            ghost.mark_submitted(sent.id, run_id="x", run_status="RUNNING", response="{}", now=0)


def test_a_live_hosts_drops_are_left_alone(shared: Rig, pg_dsn):
    rig = shared
    with Ledger.on_postgres(pg_dsn) as other:
        other.act_as("other", lease_s=LEASE_S)
        d = _ghost_submitting(rig, other, "busy")

        async def scenario() -> None:
            p = rig.build()
            await p.startup()
            p.claims.take_over()
            assert p.state.needs_reconcile == {} and p.state.tracked == {}
            assert p.state.ledger.due(time.time()) == []
            assert rig.drop("busy").claimed_by == "other"

        run(scenario)
        assert (
            other.mark_submitted(
                d.id, run_id="r", run_status="RUNNING", response="{}", now=time.time()
            ).state
            is DropState.SUBMITTED
        )


def test_a_run_posted_after_the_claim_was_lost_is_reported_not_recorded(shared: Rig, pg_dsn):
    """The POST went out, then the answer finds the drop taken over: nothing is written, and
    the run's id is logged so the operator can cancel a duplicate."""
    rig = shared

    async def scenario() -> None:
        p = rig.build()
        d = p.state.ledger.record_ready(
            rule="main",
            drop="late",
            fingerprint="f" * 64,
            input_dir=rig.input_dir("late"),
            deployment_id=DEPLOYMENT,
        )
        (mine,) = p.state.ledger.due(time.time())
        p.state.ledger.begin_submit(mine.id, now=time.time())
        with Ledger.on_postgres(pg_dsn) as other:
            later = time.time() + 2 * LEASE_S
            other.act_as("other", lease_s=LEASE_S, clock=lambda: later)
            assert [x.id for x in other.take(DropState.SUBMITTING, only_new=True)] == [d.id]
        late = SubmittedRun(drop_id=d.id, run_id="run-late", run_status="RUNNING", response="{}")
        p.submitter._submitted.add(late)
        with capture_logs() as logs:
            p.submitter.flush_submitted()
        assert [(e["event"], e["run_id"]) for e in logs] == [("run.claim_lost", "run-late")]
        assert d.id not in p.state.tracked
        assert rig.drop("late").state is DropState.SUBMITTING

    run(scenario)


def test_a_host_frozen_between_its_claim_check_and_its_post_sends_nothing(shared: Rig, pg_dsn):
    """SIGSTOP at the worst moment: the claim check passed, then the host froze past its lease,
    and another host took the drop over and posted it. When the frozen host wakes, its POST is
    not sent (the lease's send deadline has passed) and handing it back is fenced: one run, not
    two."""
    rig = shared
    rig.lease_s = 2.0  # the POST may start until 1 s before the lease ends (send_margin_s)
    taken_over = threading.Event()

    async def scenario() -> None:
        p = rig.build()
        ledger = p.state.ledger
        d = ledger.record_ready(
            rule="main",
            drop="frozen",
            fingerprint="f" * 64,
            input_dir=rig.input_dir("frozen"),
            deployment_id=DEPLOYMENT,
        )
        real_check = ledger.check_claim

        def check_then_freeze(drop_id: str) -> float | None:
            lease_until = real_check(drop_id)  # still ours
            assert lease_until is not None
            # Frozen (no heartbeat, no send) until the other host has taken over and posted.
            wait_until(taken_over.is_set, timeout=30, what="the other host's takeover")
            return lease_until

        ledger.check_claim = check_then_freeze  # type: ignore[method-assign]

        def other_host() -> str:
            with Ledger.on_postgres(pg_dsn) as other:
                other.act_as("other", lease_s=30.0)
                # Its lease on the drop ends 2 s after our claim: then the drop is the other's.
                wait_until(
                    lambda: other.take(DropState.SUBMITTING, only_new=True),
                    timeout=20,
                    what="our lease to end",
                )
                # It found no run by the drop's tag (we never sent one), so it posts.
                assert not [r for r in rig.sim.runs if drop_tag(d.id) in str(r)]
                run_id = _post(rig, "frozen", d.id)
                other.mark_submitted(
                    d.id, run_id=run_id, run_status="RUNNING", response="{}", now=time.time()
                )
                taken_over.set()
                return run_id

        with capture_logs() as logs:
            async with running(p.submitter.run()):
                run_id = await asyncio.to_thread(other_host)
                await until(lambda: any(e["event"] == "claim.lost" for e in logs))
        assert len(rig.posts()) == 1  # the other host's; ours never left
        after = rig.drop("frozen")
        assert (after.state, after.run_id, after.claimed_by) == (
            DropState.SUBMITTED,
            run_id,
            "other",
        )
        (lost,) = [e for e in logs if e["event"] == "claim.lost"]
        assert lost["drop_id"] == d.id and "other holds it" in lost["error"]

    run(scenario)
