"""Burst throughput with several hosts on one PostgreSQL ledger (issue 14); updates the section
"Several hosts on PostgreSQL" of bench/RESULTS.md.

The same 1,000-drop burst as the main benchmark (complete drops built beside the watched folder,
renamed in at once; runs counted from the simulator's --record file, first run to last), run
by: one daemon on SQLite (the reference), one daemon on PostgreSQL, and two daemons on
PostgreSQL (each its own state_dir and state.host_id, the same folder and the same DSN). Each
scenario gets its own simulator process and, on PostgreSQL, a fresh schema dropped afterwards.
Rounds alternate the scenarios, so a busy spell on a shared machine hits each of them.

    .venv/bin/python bench/multihost_bench.py [--rounds 3] [--drops 1000] [--out bench/RESULTS.md]

The PostgreSQL server is $AIHUB_WATCHER_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/
test, trust auth); the daemon needs psycopg (`pip install -e '.[postgres]'`). Imports no watcher
module: the daemons and the simulator run as a user runs them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_lib as L
import yaml

PG_URL = os.environ.get("AIHUB_WATCHER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SECTION = "## Several hosts on PostgreSQL"
SETTLE_S = 0.5
MAX_CONCURRENCY = 16
RUN_SECONDS = 600.0  # runs stay RUNNING, as in the main burst: the tracker polls, none finish
SCENARIOS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2))


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh schema on the benchmark's server; its DSN; dropped afterwards."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def host_config(wd: Path, sim: L.Simulator, watch: Path, name: str, dsn: str | None) -> Path:
    """The main benchmark's config, plus `state:` on PostgreSQL (own host_id and state_dir)."""
    path = L.write_config(
        wd / f"{name}.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=wd / f"{name}-state",
        settle_seconds=SETTLE_S,
        max_concurrency=MAX_CONCURRENCY,
    )
    if dsn is not None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["state"] = {"backend": "postgresql", "dsn": dsn, "host_id": name}
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def burst(backend: str, hosts: int, n: int, wd: Path, dsn: str | None) -> dict[str, Any]:
    """One burst of `n` drops with `hosts` daemons; the figures of one row."""
    watch = wd / "watch"
    watch.mkdir(parents=True)
    staging = wd / "staging"
    names = [f"drop-{i:05d}" for i in range(n)]
    expected = {L.input_dir(x) for x in names}
    L.stage_drops(staging, names)
    with L.Simulator(wd, "sim", run_seconds=RUN_SECONDS) as sim:
        daemons = []
        try:
            for i in range(hosts):
                config = host_config(wd, sim, watch, f"host-{i + 1}", dsn)
                daemons.append(L.DaemonProc(config=config, log=wd / f"host-{i + 1}.log").start())
            for d in daemons:
                d.wait_ready(120)
            cpu0 = [L.proc_cpu_ticks(d.pid) for d in daemons]
            t0, _ = L.rename_in(staging, watch, names)
            done = sim.tail.wait_distinct(expected, timeout=60 + n / 10)
            cpu = [
                (L.proc_cpu_ticks(d.pid) - c) / L.CLK_TCK
                for d, c in zip(daemons, cpu0, strict=True)
            ]
            sim.tail.wait_quiet(quiet_s=1.0, timeout=10)
            runs = list(sim.tail.poll())
        finally:
            codes = [d.stop() for d in daemons]
    per_host = [len(d.events("run.submitted")) for d in daemons]
    per = Counter(r.input_dir for r in runs)
    times = sorted(r.time for r in runs if r.input_dir in expected)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    shutil.rmtree(staging, ignore_errors=True)
    return {
        "backend": backend,
        "hosts": hosts,
        "n": n,
        "complete": done,
        "runs": len(runs),
        "duplicates": sum(c - 1 for c in per.values() if c > 1),
        "misses": len(expected - set(per)),
        "runs_per_s": (len(times) - 1) / span if span > 0 else float("nan"),
        "last_run_s": (times[-1] - t0) if times else float("nan"),
        "cpu_s": cpu,
        "runs_by_host": per_host,
        # Each daemon's CPU per 1,000 of the runs it submitted (its own share of the burst).
        "cpu_per_1000": [
            c / r * 1000 if r else float("nan") for c, r in zip(cpu, per_host, strict=True)
        ],
        "exit_codes": codes,
    }


def label(backend: str, hosts: int) -> str:
    engine = "SQLite" if backend == "sqlite" else "PostgreSQL"
    return f"{hosts} host{'s' if hosts > 1 else ''}, {engine}"


def _loadavg() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def render(results: list[dict[str, Any]], meta: dict[str, str]) -> str:
    rows = []
    for backend, hosts in SCENARIOS:
        mine = [r for r in results if r["backend"] == backend and r["hosts"] == hosts]
        if not mine:
            continue
        rates = [r["runs_per_s"] for r in mine]
        lasts = [r["last_run_s"] for r in mine]
        cpu_k = [c for r in mine for c in r["cpu_per_1000"]]
        total_k = [sum(r["cpu_s"]) / r["runs"] * 1000 for r in mine if r["runs"]]
        shares = ["/".join(str(x) for x in r["runs_by_host"]) for r in mine]
        dup = sum(r["duplicates"] for r in mine)
        miss = sum(r["misses"] for r in mine)
        rows.append(
            f"| {label(backend, hosts)} | {statistics.median(rates):.0f} "
            f"({min(rates):.0f}-{max(rates):.0f}) | {statistics.median(lasts):.1f} | "
            f"{statistics.median(cpu_k):.2f} ({min(cpu_k):.2f}-{max(cpu_k):.2f}) | "
            f"{statistics.median(total_k):.2f} | "
            f"{', '.join(shares)} | {dup} / {miss} |"
        )
    return "\n".join(
        [
            SECTION,
            "",
            f"Written by `bench/multihost_bench.py` ({meta['when']}, code {meta['code']}, "
            f"{meta['rounds']} rounds, the scenarios alternating). **The machine was shared with "
            f"other jobs while it ran** (load average {meta['load_before']} before, "
            f"{meta['load_after']} after, on {meta['cores']} cores): read the ranges, not the "
            "last digit. The burst is the main benchmark's (1,000 complete drops renamed in at "
            "once, runs counted from the simulator's record, first run to last; "
            f"`max_concurrency: {MAX_CONCURRENCY}`, `settle_seconds: {SETTLE_S}`, runs stay "
            "RUNNING), each scenario with its own simulator process; PostgreSQL 15 on the same "
            "machine (127.0.0.1, a fresh schema per burst, default `lease_seconds`).",
            "",
            "| scenario | runs/s, median (range) | s from renames to last run | daemon CPU s per "
            "1,000 of its runs, median (range) | all daemons' CPU s per 1,000 runs | runs per "
            "host, each round | duplicates / misses |",
            "|---|---:|---:|---:|---:|---|---|",
            *rows,
            "",
            "- CPU is each daemon's utime+stime from /proc over the burst, divided by the runs "
            "that daemon submitted (its `run.submitted` events); the PostgreSQL server's own CPU "
            "is not in it (on a shared server it cannot be told apart from other clients').",
            "- Every host detects every drop; only the claim holder posts it (the runs-per-host "
            "column). On PostgreSQL a daemon waits on the database more than it computes: each "
            "claim, intent and batch of results is a transaction on its one connection, one "
            "after the other, so one host stays well below SQLite, and a second host (a second "
            "connection) adds about as much again.",
            "- Both hosts, the simulator and the PostgreSQL server share this machine's cores: "
            "two hosts on two machines would not compete for CPU as they do here.",
            f"- Command: `.venv/bin/python bench/multihost_bench.py --rounds {meta['rounds']}` "
            "(or `bash bench/run_all.sh --multihost`, which runs it after the main benchmark).",
            "",
        ]
    )


def update_results(path: Path, section: str) -> None:
    """Replace the section in `path` (up to the next `## ` heading), or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--drops", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=L.BENCH / "RESULTS.md")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="aihub-multihost-"))
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": L.code_version(),
        "rounds": str(args.rounds),
        "load_before": _loadavg(),
        "cores": str(os.cpu_count()),
    }
    results: list[dict[str, Any]] = []
    try:
        for rnd in range(1, args.rounds + 1):
            for backend, hosts in SCENARIOS:
                wd = base / f"r{rnd}-{backend}-{hosts}"
                wd.mkdir(parents=True)
                started = time.monotonic()
                with contextlib.ExitStack() as stack:
                    dsn = stack.enter_context(pg_schema()) if backend == "postgresql" else None
                    res = burst(backend, hosts, args.drops, wd, dsn)
                results.append(res)
                log(
                    f"round {rnd} {label(backend, hosts)}: {res['runs_per_s']:.0f} runs/s, "
                    f"runs by host {res['runs_by_host']}, "
                    f"CPU s {[round(c, 2) for c in res['cpu_s']]}, "
                    f"dup {res['duplicates']} miss {res['misses']}, exit {res['exit_codes']} "
                    f"({time.monotonic() - started:.0f} s)"
                )
                shutil.rmtree(wd, ignore_errors=True)
    finally:
        L.stop_all()
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    meta["load_after"] = _loadavg()
    update_results(args.out, render(results, meta))
    log(f"updated {args.out}: {SECTION[3:]}")
    bad = [r for r in results if r["duplicates"] or r["misses"] or any(r["exit_codes"])]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
