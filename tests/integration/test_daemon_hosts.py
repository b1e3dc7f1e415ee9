"""Two daemons ("hosts") on one folder and one PostgreSQL ledger: every host detects, each drop
is submitted by one of them, once; a host killed with -9 has its runs taken over.

Each daemon has its own state_dir (its lock) and `state.host_id`; both share the `pg_dsn`
schema. Without a server these are skipped, under CI=true they fail.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from tests.conftest import wait_until
from tests.daemon_helpers import (
    DaemonProcess,
    input_dir,
    ledger_states,
    make_drop,
    run_cli,
    runs_by_input_dir,
    start_daemon,
    wait_all_complete,
    wait_runs,
    write_config,
)

LEASE_S = 3


def _host(sim: Any, tmp_path: Path, watch: Path, dsn: str, name: str) -> Path:
    state_dir = tmp_path / f"state-{name}"
    state_dir.mkdir(exist_ok=True)
    state = {"backend": "postgresql", "dsn": dsn, "host_id": name, "lease_seconds": LEASE_S}
    return write_config(
        tmp_path / f"{name}.yaml", hub_url=sim.url, watch=watch, state_dir=state_dir, state=state
    )


def _status(config: Path) -> dict[str, Any]:
    out = run_cli("status", "--json", "-c", str(config))
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_two_hosts_share_the_drops_and_post_each_once(sim, tmp_path, token, pg_dsn):
    watch = tmp_path / "watch"
    watch.mkdir()
    configs = [_host(sim, tmp_path, watch, pg_dsn, name) for name in ("host-a", "host-b")]
    daemons = [DaemonProcess(c, env={"AIHUB_TEST_TOKEN": token}) for c in configs]
    for d in daemons:
        d.wait_ready()
    names = [f"m-{i:02d}" for i in range(20)]
    for name in names:
        make_drop(watch, name)
    wait_runs(sim, {input_dir(n) for n in names})
    wait_all_complete(configs[0], names)
    for d in daemons:
        assert d.stop() == 0
    assert runs_by_input_dir(sim) == {input_dir(n): 1 for n in names}
    status = _status(configs[1])
    assert {d["submitted_by"] for d in status["drops"]} <= {"host-a", "host-b"}
    assert {h["host_id"] for h in status["hosts"]} == {"host-a", "host-b"}
    assert sum(len(d.find("run.submitted")) for d in daemons) == len(names)
    # Both detected every drop; neither stumbled over the other's rows.
    for d in daemons:
        assert [e for e in d.events if e.get("level") in ("error", "critical")] == []
        assert "Traceback" not in d.output()


def test_a_killed_hosts_runs_are_tracked_on_by_the_other(sim, tmp_path, token, pg_dsn):
    """kill -9 of the host that submitted: after its lease, the other host takes its runs over
    and tracks them to the end; nothing is posted again."""
    watch = tmp_path / "watch"
    watch.mkdir()
    config_a = _host(sim, tmp_path, watch, pg_dsn, "host-a")
    config_b = _host(sim, tmp_path, watch, pg_dsn, "host-b")
    a = start_daemon(config_a, token)
    sim.options.run_seconds = 6  # still running when A dies
    names = [f"k-{i}" for i in range(5)]
    for name in names:
        make_drop(watch, name)
    wait_until(
        lambda: all(ledger_states(config_a).get(n) == "submitted" for n in names),
        timeout=20,
        what="every run submitted by host-a",
    )
    a.kill()
    b = start_daemon(config_b, token)
    b.wait_for("claim.tracking", count=len(names), timeout=30)
    wait_all_complete(config_b, names, timeout=40)
    assert b.stop() == 0
    assert runs_by_input_dir(sim) == {input_dir(n): 1 for n in names}
    assert "Traceback" not in b.output()
    status = _status(config_b)
    assert {d["submitted_by"] for d in status["drops"]} == {"host-a"}
    alive = {h["host_id"]: h["alive"] for h in status["hosts"]}
    assert alive["host-a"] is False


def test_a_frozen_host_wakes_to_find_its_runs_taken_over(sim, tmp_path, token, pg_dsn):
    """SIGSTOP the host tracking five runs: the other takes them over after the lease and
    finishes them; SIGCONT: the woken host's stale claims are refused (`claim.lost`), it keeps
    running, and nothing is posted twice."""
    watch = tmp_path / "watch"
    watch.mkdir()
    config_a = _host(sim, tmp_path, watch, pg_dsn, "host-a")
    config_b = _host(sim, tmp_path, watch, pg_dsn, "host-b")
    a = start_daemon(config_a, token)
    sim.options.run_seconds = 5  # still running while A is frozen
    names = [f"z-{i}" for i in range(5)]
    for name in names:
        make_drop(watch, name)
    wait_until(
        lambda: all(ledger_states(config_a).get(n) == "submitted" for n in names),
        timeout=20,
        what="every run submitted by host-a",
    )
    a.signal(signal.SIGSTOP)
    try:
        b = start_daemon(config_b, token)
        b.wait_for("claim.tracking", count=len(names), timeout=30)
        wait_all_complete(config_b, names, timeout=40)
    finally:
        a.signal(signal.SIGCONT)
    # A polls its stale runs, sees them end, and may not record it.
    a.wait_for("claim.lost", timeout=30)
    make_drop(watch, "sentinel")
    wait_runs(sim, {input_dir("sentinel")})
    wait_all_complete(config_b, [*names, "sentinel"])
    assert a.stop() == 0 and b.stop() == 0
    assert runs_by_input_dir(sim) == {input_dir(n): 1 for n in [*names, "sentinel"]}
