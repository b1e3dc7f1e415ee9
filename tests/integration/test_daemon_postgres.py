"""The real daemon on a PostgreSQL ledger, and `ledger migrate` from SQLite: no drop runs twice.

Each test has a schema of its own (the `pg_dsn` fixture); without a server they are skipped,
under CI=true they fail.
"""

from __future__ import annotations

import json

from tests.conftest import wait_until
from tests.daemon_helpers import (
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

PASSWORD = "pw-of-the-ledger-99"


def _with_password(dsn: str) -> str:
    # Trust auth ignores it; it is there to show it never reaches a log line or `status`.
    return dsn.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def test_the_daemon_runs_on_postgresql(sim, dirs, tmp_path, token, pg_dsn):
    """backend: postgresql: drops run once each and complete; `status` reads the same ledger;
    the DSN's password shows nowhere."""
    state = {"backend": "postgresql", "dsn": _with_password(pg_dsn)}
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        state=state,
    )
    daemon = start_daemon(config, token)
    names = [f"pg-{i}" for i in range(5)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_runs(sim, {input_dir(n) for n in names})
    wait_all_complete(config, names)
    assert daemon.stop() == 0
    assert runs_by_input_dir(sim) == {input_dir(n): 1 for n in names}
    assert not (dirs["state"] / "ledger.sqlite3").exists()
    status = run_cli("status", "-c", str(config))
    assert status.returncode == 0 and "5 drops: complete 5" in status.stdout
    assert PASSWORD not in daemon.output() + status.stdout + status.stderr


def test_migrate_then_the_postgresql_daemon_posts_nothing_again(sim, dirs, tmp_path, token, pg_dsn):
    """A SQLite ledger with complete and still-running drops, migrated: the daemon on PostgreSQL
    tracks the running ones to the end and posts no run again for any of them."""
    sqlite_config = write_config(
        tmp_path / "sqlite.yaml", hub_url=sim.url, watch=dirs["watch"], state_dir=dirs["state"]
    )
    daemon = start_daemon(sqlite_config, token)
    done = ["done-1", "done-2"]
    for name in done:
        make_drop(dirs["watch"], name)
    wait_all_complete(sqlite_config, done)
    sim.options.run_seconds = 8  # these are still running when the daemon stops
    running = ["running-1", "running-2"]
    for name in running:
        make_drop(dirs["watch"], name)
    wait_until(
        lambda: all(ledger_states(sqlite_config).get(n) == "submitted" for n in running),
        timeout=20,
        what="both runs submitted",
    )
    # While the daemon holds the state_dir, migrate refuses.
    refused = run_cli("ledger", "migrate", "-c", str(sqlite_config), "--to", pg_dsn)
    assert refused.returncode == 2 and "stop the daemon" in refused.stderr
    assert daemon.stop() == 0
    assert {ledger_states(sqlite_config)[n] for n in running} == {"submitted"}

    migrated = run_cli(
        "ledger", "migrate", "-c", str(sqlite_config), "--to", _with_password(pg_dsn)
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "copied 4 drops" in migrated.stdout and PASSWORD not in migrated.stdout
    again = run_cli("ledger", "migrate", "-c", str(sqlite_config), "--to", pg_dsn)
    assert again.returncode == 1 and "already holds 4 drops" in again.stderr

    sim.options.run_seconds = 0
    pg_config = write_config(
        tmp_path / "pg.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        state={"backend": "postgresql", "dsn": pg_dsn},
    )
    daemon = start_daemon(pg_config, token)
    # A sentinel made after the start: once it has run, any re-post would have happened.
    make_drop(dirs["watch"], "sentinel")
    wait_runs(sim, {input_dir("sentinel")})
    wait_all_complete(pg_config, [*done, *running, "sentinel"], timeout=40)
    assert daemon.stop() == 0
    assert runs_by_input_dir(sim) == {input_dir(n): 1 for n in [*done, *running, "sentinel"]}
    status = json.loads(run_cli("status", "--json", "-c", str(pg_config)).stdout)
    assert {d["drop"] for d in status["drops"]} == {*done, *running, "sentinel"}
