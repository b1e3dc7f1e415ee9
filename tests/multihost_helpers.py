"""Several daemons ("hosts") on one folder and one PostgreSQL ledger, for the chaos tests.

A host is a real daemon subprocess (tests/daemon_helpers.py) with its own state_dir and
`state.host_id`, the shared DSN and a short lease. A burst is built in a staging folder and
renamed in, as the benchmark does. `RunTally` counts the simulator's runs by drop tag and by
input_dir (a duplicate is a second run for either); `LedgerProbe` reads the shared ledger
directly. `PrivateCluster` is a throwaway PostgreSQL server the tests may stop and restart
without disturbing the shared one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.daemon_helpers import DaemonProcess, input_dir, write_config

TAG_PREFIX = "aihub-watcher:drop="
PG_BIN = Path(os.environ.get("AIHUB_WATCHER_PG_BIN", "/usr/lib/postgresql/15/bin"))


# --- hosts ------------------------------------------------------------------------------------


@dataclass
class Host:
    """One daemon of the group: its name (host_id), config and, while it runs, its process."""

    name: str
    config: Path
    env: dict[str, str]
    daemon: DaemonProcess | None = None

    def start(self) -> DaemonProcess:
        self.daemon = DaemonProcess(self.config, env=self.env)
        return self.daemon

    @property
    def proc(self) -> DaemonProcess:
        assert self.daemon is not None, f"{self.name} was never started"
        return self.daemon

    def alive(self) -> bool:
        return self.daemon is not None and self.daemon.proc.poll() is None


def make_hosts(
    names: Sequence[str],
    *,
    sim: Any,
    tmp_path: Path,
    watch: Path,
    dsn: str,
    token: str,
    lease_s: float,
    max_concurrency: int = 8,
) -> list[Host]:
    """A config per host: same folder, DSN and simulator; own state_dir and host_id."""
    hosts = []
    for name in names:
        state_dir = tmp_path / f"state-{name}"
        state_dir.mkdir(exist_ok=True)
        state = {"backend": "postgresql", "dsn": dsn, "host_id": name, "lease_seconds": lease_s}
        config = write_config(
            tmp_path / f"{name}.yaml",
            hub_url=sim.url,
            watch=watch,
            state_dir=state_dir,
            state=state,
            hub={"max_concurrency": max_concurrency},
        )
        hosts.append(Host(name, config, {"AIHUB_TEST_TOKEN": token}))
    return hosts


def problems(daemon: DaemonProcess, allowed: Iterable[str] = ()) -> list[str]:
    """Tracebacks and error-level events in a daemon's log, but the `allowed` events."""
    skip = set(allowed)
    found = [
        f"{e.get('event')}: {e.get('error', '')} {e.get('exception', '')[-1500:]}"
        for e in daemon.events
        if e.get("level") in ("error", "critical") and e.get("event") not in skip
    ]
    if "Traceback" in daemon.output():
        found.append("a Traceback in its output")
    return found


# --- drops ------------------------------------------------------------------------------------


def burst_names(n: int, prefix: str = "b") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def stage_drops(staging: Path, names: Iterable[str], *, files: int = 1) -> None:
    """Complete drops outside the watched folder (same filesystem), ready to be renamed in."""
    for name in names:
        folder = staging / name
        folder.mkdir(parents=True)
        for i in range(files):
            (folder / f"page-{i}.pdf").write_bytes(b"%PDF-1.4\n" + name.encode())


def rename_in(staging: Path, watch: Path, names: Iterable[str]) -> None:
    for name in names:
        os.rename(staging / name, watch / name)


# --- what the simulator ran -------------------------------------------------------------------


class RunTally:
    """The simulator's runs, counted per drop tag and per input_dir."""

    def __init__(self, sim: Any) -> None:
        self.runs: list[dict[str, Any]] = sim.runs
        self.by_dir = Counter(r["input_dir"] for r in self.runs)
        self.by_tag = Counter(
            t for r in self.runs for t in r.get("tags") or () if t.startswith(TAG_PREFIX)
        )

    def duplicates(self) -> dict[str, int]:
        """Every drop tag or input_dir with more than one run, and how many runs."""
        dup = {k: c for k, c in self.by_dir.items() if c > 1}
        dup.update({k: c for k, c in self.by_tag.items() if c > 1})
        return dup

    def misses(self, names: Iterable[str]) -> list[str]:
        return sorted(n for n in names if input_dir(n) not in self.by_dir)

    def untagged(self) -> int:
        return sum(1 for r in self.runs if not any(t.startswith(TAG_PREFIX) for t in r["tags"]))


def wait_runs_for(sim: Any, names: Sequence[str], *, timeout: float) -> None:
    expected = {input_dir(n) for n in names}
    wait_until(
        lambda: expected <= {r["input_dir"] for r in sim.runs},
        timeout=timeout,
        interval=0.2,
        what=f"a run for each of {len(names)} drops",
    )


def wait_quiet(sim: Any, *, quiet_s: float, timeout: float) -> None:
    """Until no new run was created for `quiet_s` (a late duplicate would show up here)."""
    seen, since = len(sim.runs), time.monotonic()

    def quiet() -> bool:
        nonlocal seen, since
        now_seen = len(sim.runs)
        if now_seen != seen:
            seen, since = now_seen, time.monotonic()
        return time.monotonic() - since >= quiet_s

    wait_until(quiet, timeout=timeout, interval=0.1, what=f"no new run for {quiet_s}s")


# --- the shared ledger, read directly ---------------------------------------------------------


class LedgerProbe:
    """Reads the hosts' PostgreSQL ledger (one short connection per look)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=3) as conn:
            return list(conn.execute(sql).fetchall())

    def states(self) -> dict[str, str]:
        """drop name -> state of its live row (a second live row would be a bug: fails)."""
        rows = self._rows("SELECT drop_path, state FROM drops WHERE archived = 0")
        names = Counter(r[0] for r in rows)
        doubled = [n for n, c in names.items() if c > 1]
        assert not doubled, f"drops recorded twice: {doubled[:10]}"
        return {str(r[0]): str(r[1]) for r in rows}

    def submitted_by(self) -> Counter[str]:
        return Counter(str(r[0]) for r in self._rows("SELECT submitted_by FROM drops"))

    def not_complete(self, names: Iterable[str]) -> dict[str, str]:
        states = self.states()
        return {n: states.get(n, "missing") for n in names if states.get(n) != "complete"}

    def wait_complete(self, names: Sequence[str], *, timeout: float) -> None:
        left: dict[str, str] = {}

        def done() -> bool:
            nonlocal left
            left = self.not_complete(names)
            return not left

        try:
            wait_until(done, timeout=timeout, interval=0.5, what="every drop complete")
        except BaseException:
            print(f"not complete ({len(left)}): {dict(list(left.items())[:20])}")
            raise


# --- a private PostgreSQL server --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def private_cluster_missing() -> str | None:
    """Why a private cluster cannot be made here (None: it can)."""
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).is_file():
            return f"no {PG_BIN / tool} (PostgreSQL 15 server binaries; AIHUB_WATCHER_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser (initdb must run as the postgres user)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install -e '.[postgres]'"
    return None


class PrivateCluster:
    """A PostgreSQL server of the test's own on 127.0.0.1 (trust auth, fsync off), which a test
    may stop and restart. As root its files belong to `postgres` (runuser); else to us."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="aihub-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        try:
            if self._as_root:
                shutil.chown(self.root, "postgres", "postgres")
            self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
            self.start()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> None:
        argv = [str(PG_BIN / tool), *args]
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")

    def _ctl(self, action: str, *extra: str) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-l", log, "-o", opts, "-w", *extra, action)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        """A fast shutdown: open sessions are cut (the hosts see their connections drop)."""
        self._ctl("stop", "-m", "fast")

    def new_schema(self, name: str) -> str:
        """A fresh schema in the cluster; its DSN (search_path set through `options`)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.dsn}?options=-csearch_path%3D{name}"

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def private_cluster_or_skip() -> PrivateCluster:
    """A started private cluster; skipped (saying why) where one cannot be made, failed under
    CI=true."""
    reason = private_cluster_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires the chaos tests to run", pytrace=False)
        pytest.skip(reason)
    return PrivateCluster()
