"""Claims on a shared ledger: leases, heartbeats, fencing and takeover, on both backends.

Two `Ledger`s on one store stand for two hosts; their clock is the test's, so a lease ends
when the test says so.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.ledger_stores import Store
from tests.unit.ledger_helpers import NOW, ready
from watcher.ledger import ClaimLostError, Ledger
from watcher.model import DropState, SubmittedRun

LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hosts(ledger_store: Store, clock: Clock) -> Iterator[tuple[Ledger, Ledger]]:
    with ledger_store.open() as a, ledger_store.open() as b:
        a.act_as("host-a", lease_s=LEASE, clock=clock)
        b.act_as("host-b", lease_s=LEASE, clock=clock)
        yield a, b


def test_a_single_host_claims_nothing(ledger_store: Store) -> None:
    """Without act_as (SQLite, one daemon) rows stay unclaimed and nothing is fenced."""
    with ledger_store.open() as led:
        d = ready(led)
        assert led.host is None and led.due(NOW + 1) == [d]
        assert led.take(DropState.READY) == [d] and led.take(DropState.READY, only_new=True) == []
        begun = led.begin_submit(d.id, now=NOW + 1)
        assert begun.claimed_by is None and begun.claim_epoch == 0
        assert led.heartbeat() == 0 and led.hosts() == []


def test_due_claims_and_another_host_waits_for_the_lease(hosts, clock) -> None:
    a, b = hosts
    drops = [ready(a, f"d{i}") for i in range(3)]
    taken = a.due(NOW + 1, limit=2)
    assert [d.id for d in taken] == [d.id for d in drops[:2]]
    assert {(d.claimed_by, d.claim_epoch, d.lease_until) for d in taken} == {
        ("host-a", 1, NOW + LEASE)
    }
    # B gets only what A does not hold; A gets its own again.
    assert [d.id for d in b.due(NOW + 1)] == [drops[2].id]
    assert [d.id for d in a.due(NOW + 1)] == [d.id for d in drops[:2]]
    clock.now += LEASE + 1  # A stopped beating
    again = b.due(clock.now)
    assert [d.id for d in again] == [d.id for d in drops]
    assert {d.claimed_by for d in again} == {"host-b"}
    assert [d.claim_epoch for d in again] == [2, 2, 2]  # B's own lease on d2 ended too


def test_a_stale_host_cannot_apply_a_transition(hosts, clock) -> None:
    """Fencing: once B took the drop over, A's change is refused and nothing is written."""
    a, b = hosts
    d = ready(a)
    a.due(NOW + 1)
    clock.now += LEASE + 1
    b.due(clock.now)
    with pytest.raises(ClaimLostError, match=r"host-b holds it \(epoch 2\); not applied"):
        a.begin_submit(d.id, now=clock.now)
    assert a.get(d.id).state is DropState.READY
    assert b.begin_submit(d.id, now=clock.now).state is DropState.SUBMITTING


def test_an_expired_lease_is_lost_even_before_a_takeover(hosts, clock) -> None:
    a, _ = hosts
    d = ready(a)
    a.due(NOW + 1)
    clock.now += LEASE + 1
    with pytest.raises(ClaimLostError, match="our lease ended"):
        a.begin_submit(d.id, now=clock.now)
    assert a.get(d.id).state is DropState.READY


def test_the_heartbeat_keeps_leases_and_shows_the_host_alive(hosts, clock) -> None:
    a, b = hosts
    d = ready(a)
    a.due(NOW + 1)
    for _ in range(3):
        clock.now += LEASE / 2
        assert a.heartbeat() == 1
    assert b.due(clock.now) == []  # still A's, a lease and a half after the claim
    assert a.begin_submit(d.id, now=clock.now).state is DropState.SUBMITTING
    b.heartbeat()
    beats = {h.host_id: h for h in b.hosts()}
    assert set(beats) == {"host-a", "host-b"}
    assert beats["host-a"].alive(clock.now, LEASE)
    assert not beats["host-a"].alive(clock.now + LEASE + 1, LEASE)
    # An expired lease is not brought back by a late heartbeat: it may be being taken over.
    clock.now += LEASE + 1
    assert a.heartbeat() == 0


def test_a_dead_hosts_submitting_drops_are_taken_over_once(hosts, clock) -> None:
    """B takes over A's `submitting` drop only after A's lease ended, and only once; A's late
    answer is not recorded (B adopts the run by tag)."""
    a, b = hosts
    d = ready(a)
    a.due(NOW + 1)
    a.begin_submit(d.id, now=NOW + 1)
    assert b.take(DropState.SUBMITTING, only_new=True) == []
    clock.now += LEASE + 1
    (taken,) = b.take(DropState.SUBMITTING, only_new=True)
    assert (taken.id, taken.claimed_by, taken.state) == (d.id, "host-b", DropState.SUBMITTING)
    assert b.take(DropState.SUBMITTING, only_new=True) == []
    assert [x.id for x in b.take(DropState.SUBMITTING)] == [d.id]
    late = SubmittedRun(drop_id=d.id, run_id="run-1", run_status="RUNNING", response="{}")
    assert a.mark_submitted_many([late], now=clock.now) == []
    with pytest.raises(ClaimLostError):
        a.mark_submitted(d.id, run_id="run-1", run_status="RUNNING", response="{}", now=clock.now)
    adopted = b.mark_submitted(
        d.id, run_id="run-1", run_status="RUNNING", response="{}", now=clock.now
    )
    assert adopted.state is DropState.SUBMITTED and adopted.run_id == "run-1"


def test_stage_writes_are_fenced(hosts, clock) -> None:
    a, b = hosts
    d = a.record_ready(
        rule="r",
        drop="up",
        fingerprint="fp",
        input_dir=None,
        deployment_id="dep",
        now=NOW,
        state=DropState.UPLOADING,
    )
    assert [x.id for x in a.take(DropState.UPLOADING)] == [d.id]
    a.stages.set_batch(d.id, batch_id=1, now=NOW)
    clock.now += LEASE + 1
    b.take(DropState.UPLOADING)
    with pytest.raises(ClaimLostError):
        a.stages.uploaded(d.id, now=clock.now)
    assert b.stages.uploaded(d.id, now=clock.now).state is DropState.READY


def test_two_hosts_claiming_at_once_never_share_a_drop(hosts) -> None:
    """Each due drop goes to exactly one host, however their claims interleave."""
    a, b = hosts
    ids = {ready(a, f"d{i:02d}").id for i in range(40)}
    got: dict[str, list[str]] = {"a": [], "b": []}

    def claim(name: str, led: Ledger) -> None:
        # As the submit loop does: claim a few, record their intent, claim the next ones.
        while batch := led.due(NOW + 1, limit=3):
            for d in batch:
                led.begin_submit(d.id, now=NOW + 1)
                got[name].append(d.id)

    threads = [threading.Thread(target=claim, args=item) for item in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not set(got["a"]) & set(got["b"])
    assert set(got["a"]) | set(got["b"]) == ids


def test_next_due_at_counts_only_what_this_host_may_claim(hosts, clock) -> None:
    """Another host's claimed backlog must not keep this host's submit loop awake."""
    a, b = hosts
    ready(a, "x", now=NOW - 5)
    a.due(NOW)
    assert a.next_due_at() == NOW - 5
    assert b.next_due_at() is None
    ready(b, "y", now=NOW - 1)
    assert b.next_due_at() == NOW - 1
    clock.now += LEASE + 1
    assert b.next_due_at() == NOW - 5


def test_a_drop_another_host_recorded_a_moment_ago_is_theirs(hosts) -> None:
    """Both hosts detect a drop; the second to record it gets the first's row, no error."""
    a, b = hosts
    first = ready(a, "x")
    assert ready(b, "x") == first
    assert len(b.all_drops()) == 1


def test_a_finished_drop_stays_fenced_against_its_old_holder(hosts, clock) -> None:
    """B took A's run over and finished it: its lease is no longer renewed, and A, waking up,
    still cannot apply the status it had polled."""
    a, b = hosts
    d = ready(a)
    a.due(NOW + 1)
    a.begin_submit(d.id, now=NOW + 1)
    a.mark_submitted(d.id, run_id="r", run_status="RUNNING", response="{}", now=NOW + 1)
    clock.now += LEASE + 1
    (taken,) = b.take(DropState.SUBMITTED, only_new=True)
    b.set_run_status(taken.id, run_status="COMPLETE", response="{}", now=clock.now)
    b.mark_post_action_done(taken.id, now=clock.now)
    done = b.get(d.id)
    assert (done.claimed_by, done.lease_until, done.post_action_done) == ("host-b", None, True)
    assert b.heartbeat() == 0
    with pytest.raises(ClaimLostError):
        a.set_run_status(d.id, run_status="COMPLETE", response="{}", now=clock.now)
