"""Claims in the pipeline (a shared PostgreSQL ledger): a silent host's drops are taken over,
its POSTs in flight reconciled by run tag before anything is posted again."""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs

from tests.pipeline.conftest import DEPLOYMENT, Rig, run
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
        p.submitter._pending.append(late)
        with capture_logs() as logs:
            p.submitter.flush_submitted()
        assert [(e["event"], e["run_id"]) for e in logs] == [("run.claim_lost", "run-late")]
        assert d.id not in p.state.tracked
        assert rig.drop("late").state is DropState.SUBMITTING

    run(scenario)
