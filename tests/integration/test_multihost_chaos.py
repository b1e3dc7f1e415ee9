"""Chaos on several hosts sharing one PostgreSQL ledger: whichever host (or the database) fails,
and whenever, no drop runs twice and none is missed.

Each host is a real daemon subprocess with its own state_dir and host_id, on the same folder,
the same DSN and the same simulator. A duplicate is a second run in the simulator with the same
drop tag or the same input_dir; a miss is a drop with no run; every drop must end `complete`.
Runs finish fast (`run_seconds`) so the tracker and post-run work take part. Without a
PostgreSQL server these are skipped, saying why; under CI=true they fail.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.multihost_helpers import (
    Host,
    LedgerProbe,
    PrivateCluster,
    RunTally,
    burst_names,
    make_hosts,
    private_cluster_or_skip,
    problems,
    rename_in,
    stage_drops,
    wait_quiet,
    wait_runs_for,
)

pytestmark = pytest.mark.slow

LEASE_S = 3
RUN_SECONDS = 0.3


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivateCluster]:
    """A PostgreSQL server of this session's own, which a test may restart."""
    cluster = private_cluster_or_skip()
    try:
        yield cluster
    finally:
        cluster.destroy()


def _burst(tmp_path: Path, watch: Path, n: int, prefix: str) -> list[str]:
    names = burst_names(n, prefix)
    stage_drops(tmp_path / "staging", names)
    rename_in(tmp_path / "staging", watch, names)
    return names


def _group(sim: Any, tmp_path: Path, token: str, dsn: str) -> tuple[Path, list[Host]]:
    watch = tmp_path / "watch"
    watch.mkdir()
    sim.options.run_seconds = RUN_SECONDS
    hosts = make_hosts(
        ("host-a", "host-b"),
        sim=sim,
        tmp_path=tmp_path,
        watch=watch,
        dsn=dsn,
        token=token,
        lease_s=LEASE_S,
    )
    for host in hosts:
        host.start()
    for host in hosts:
        host.proc.wait_ready()
    return watch, hosts


def _settle_and_check(
    sim: Any, dsn: str, hosts: list[Host], names: list[str], allowed: tuple[str, ...] = ()
) -> None:
    """Every drop ran once and is complete; the hosts stop cleanly and logged no error (but
    the `allowed` events)."""
    wait_runs_for(sim, names, timeout=120)
    LedgerProbe(dsn).wait_complete(names, timeout=120)
    wait_quiet(sim, quiet_s=2 * RUN_SECONDS + 1.5, timeout=30)
    for host in hosts:
        code = host.proc.stop()
        # Kept with the test's tmp_path (pytest keeps the last runs') for a post-mortem.
        host.config.with_suffix(".log").write_text(host.proc.output(), encoding="utf-8")
        assert code == 0, (host.name, problems(host.proc, allowed))
    tally = RunTally(sim)
    assert tally.duplicates() == {}
    assert tally.misses(names) == []
    assert tally.untagged() == 0
    assert len(tally.runs) == len(names)
    for host in hosts:
        assert problems(host.proc, allowed) == [], host.name


def test_kill_9_of_one_host_mid_burst_then_restart(sim, tmp_path, token, pg_dsn):
    """1,000 drops; host-a dies (kill -9) after some runs; host-b takes its claims over after
    the lease; host-a comes back later. Each drop runs once and ends complete."""
    watch, (a, b) = _group(sim, tmp_path, token, pg_dsn)
    names = _burst(tmp_path, watch, 1000, "k")
    wait_until(lambda: len(sim.runs) >= 150, timeout=60, interval=0.05, what="150 runs")
    a.proc.kill()
    killed_at = len(sim.runs)
    # host-b adopts what host-a held once its lease ended: runs in flight, POSTs in doubt.
    wait_until(
        lambda: b.proc.find("claim.tracking") or b.proc.find("claim.taken_over"),
        timeout=30,
        what="host-b taking host-a's claims over",
    )
    a.start().wait_ready()
    _settle_and_check(sim, pg_dsn, [a, b], names)
    by_host = LedgerProbe(pg_dsn).submitted_by()
    assert by_host["host-b"] > 0 and by_host["host-a"] > 0, by_host
    print(f"runs at the kill: {killed_at}; submitted by {dict(by_host)}")


def test_database_restart_mid_burst(sim, tmp_path, token, private_pg):
    """The database goes away mid-burst for a few seconds, then comes back: both hosts hold
    (they log the outage, retry, and do not exit), then finish the burst: each drop once."""
    dsn = private_pg.new_schema("restart")
    watch, hosts = _group(sim, tmp_path, token, dsn)
    names = _burst(tmp_path, watch, 1000, "r")
    wait_until(lambda: len(sim.runs) >= 100, timeout=60, interval=0.05, what="100 runs")
    private_pg.stop()
    down_at = time.monotonic()
    try:
        before = len(sim.runs)
        wait_until(
            lambda: time.monotonic() - down_at > LEASE_S + 1,
            timeout=30,
            what="an outage longer than a lease",
        )
        for host in hosts:
            assert host.alive(), f"{host.name} exited:\n{host.proc.output()[-3000:]}"
    finally:
        private_pg.start()
    print(f"runs at the outage: {before}; during it: {len(sim.runs) - before}")
    for host in hosts:
        # Each host saw the outage, held, and came back on the restarted server.
        host.proc.wait_for("ledger.back", timeout=30)
        assert host.proc.find("ledger.unavailable"), host.name
    _settle_and_check(sim, dsn, hosts, names)


def test_a_frozen_host_wakes_to_no_stale_claim(sim, tmp_path, token, pg_dsn):
    """host-a is stopped (SIGSTOP: its connection and leases go stale) mid-burst for longer
    than a lease; host-b takes its claims over. SIGCONT: host-a's stale claims are refused
    (fencing), it drops that work and carries on; no drop runs twice."""
    sim.options.latency_ms = 5  # POSTs in flight when the host freezes
    watch, (a, b) = _group(sim, tmp_path, token, pg_dsn)
    names = _burst(tmp_path, watch, 1000, "s")
    wait_until(lambda: len(sim.runs) >= 150, timeout=60, interval=0.05, what="150 runs")
    a.proc.signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        wait_until(
            lambda: b.proc.find("claim.tracking") or b.proc.find("claim.taken_over"),
            timeout=30,
            what="host-b taking host-a's claims over",
        )
        wait_until(
            lambda: time.monotonic() - frozen_at > LEASE_S + 1,
            timeout=30,
            what="host-a frozen for longer than a lease",
        )
    finally:
        a.proc.signal(signal.SIGCONT)
    # Drops after the wake: once they ran, any stale work of host-a's would have shown.
    late = _burst(tmp_path, watch, 20, "late")
    # run.claim_lost (error): a POST of host-a's reached AI Hub before the freeze, its answer
    # only after the takeover; host-b adopted that run by tag, and the tally shows no second.
    _settle_and_check(sim, pg_dsn, [a, b], [*names, *late], allowed=("run.claim_lost",))
    lost = {e: len(a.proc.find(e)) for e in ("claim.lost", "run.claim_lost", "submit.not_sent")}
    print(f"host-a on waking: {lost}")
