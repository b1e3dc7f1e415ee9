"""The five side-by-side workloads (burst, realistic writes, latency, footprint, crash).

Each function runs ONE tool ("watcher", "baseline" or "baseline-xargs") against its own simulator
process and returns plain numbers. Imports bench_lib only; no watcher module runs in this process.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_lib as L

SETTLE_S = 0.5
MAX_CONCURRENCY = 16
XARGS_P = 16
# Simulated runs stay RUNNING this long, as real AI Hub runs take minutes: the daemon's run
# tracker then polls, but no run finishes during a workload. burst(..., run_seconds=0) shows
# the other extreme (every run COMPLETE at once, so tracking competes with submission).
RUN_SECONDS = 600.0


@dataclass(slots=True)
class Tool:
    """A running tool: the daemon or the baseline pipeline, behind one small interface."""

    kind: str
    daemon: L.DaemonProc | None = None
    baseline: L.BaselineProc | None = None

    def cpu_s(self) -> float:
        if self.daemon is not None:
            return L.proc_cpu_ticks(self.daemon.pid) / L.CLK_TCK
        assert self.baseline is not None
        return L.group_cpu_ticks(self.baseline.pgid) / L.CLK_TCK

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        if self.baseline is not None:
            self.baseline.stop()

    def kill9(self) -> None:
        if self.daemon is not None:
            self.daemon.kill9()
        if self.baseline is not None:
            self.baseline.kill9()


def start_tool(
    kind: str,
    *,
    sim: L.Simulator,
    watch: Path,
    wd: Path,
    tag: str,
    observer: str = "inotify",
    ready_timeout: float = 120,
) -> tuple[Tool, float]:
    """Start `kind` on `watch`; return it once ready, with seconds to ready."""
    if kind == "watcher":
        config = L.write_config(
            wd / f"{tag}.yaml",
            hub_url=sim.url,
            watch=watch,
            state_dir=wd / f"{tag}-state",
            settle_seconds=SETTLE_S,
            max_concurrency=MAX_CONCURRENCY,
            observer=observer,
        )
        daemon = L.DaemonProc(config=config, log=wd / f"{tag}.log").start()
        return Tool(kind, daemon=daemon), daemon.wait_ready(ready_timeout)
    parallel = XARGS_P if kind == "baseline-xargs" else 0
    base = L.BaselineProc(watch=watch, hub_url=sim.url, log=wd / f"{tag}.log", parallel=parallel)
    return Tool(kind, baseline=base), base.wait_ready(ready_timeout)


def _dirs(wd: Path) -> tuple[Path, Path]:
    watch = wd / "watch"
    watch.mkdir(parents=True)
    return watch, wd / "staging"


def _names(n: int, prefix: str = "drop") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]


def _counts(runs: Sequence[L.RunRecord], expected: set[str]) -> dict[str, int]:
    per = Counter(r.input_dir for r in runs)
    return {
        "runs": len(runs),
        "distinct": len(set(per) & expected),
        "duplicates": sum(c - 1 for d, c in per.items() if d in expected and c > 1),
        "misses": len(expected - set(per)),
        "unexpected": sum(c for d, c in per.items() if d not in expected),
    }


# --- 1. burst ---------------------------------------------------------------------------------


def burst(kind: str, n: int, wd: Path, *, run_seconds: float = RUN_SECONDS) -> dict[str, Any]:
    """n complete drops renamed in at once: seconds until the last run, runs/s first->last."""
    watch, staging = _dirs(wd)
    names = _names(n)
    expected = {L.input_dir(x) for x in names}
    L.stage_drops(staging, names)
    with L.Simulator(wd, "sim", run_seconds=run_seconds) as sim:
        tool, _ = start_tool(kind, sim=sim, watch=watch, wd=wd, tag=kind)
        try:
            sim_cpu0, tool_cpu0 = sim.cpu_s(), tool.cpu_s()
            t0, t_renamed = L.rename_in(staging, watch, names)
            done = sim.tail.wait_distinct(expected, timeout=60 + n / 20)
            t_done = time.time()
            sim_cpu, tool_cpu = sim.cpu_s() - sim_cpu0, tool.cpu_s() - tool_cpu0
            # Anything a tool would post twice shows up shortly after: wait for a quiet second.
            sim.tail.wait_quiet(quiet_s=1.0, timeout=10)
            runs = list(sim.tail.poll())
        finally:
            tool.stop()
    times = sorted(r.time for r in runs if r.input_dir in expected)
    out: dict[str, Any] = {
        "kind": kind,
        "n": n,
        "run_seconds": run_seconds,
        "complete": done,
        **_counts(runs, expected),
    }
    out["rename_s"] = t_renamed - t0
    if times:
        out["first_run_s"] = times[0] - t0
        out["last_run_s"] = times[-1] - t0
        span = times[-1] - times[0]
        out["runs_per_s"] = (len(times) - 1) / span if span > 0 else float("nan")
    else:
        out["last_run_s"] = t_done - t0
        out["runs_per_s"] = 0.0
    out["tool_cpu_s"] = tool_cpu
    out["sim_cpu_s"] = sim_cpu
    # What one simulator core sustains: shows whether the simulator was the ceiling.
    out["sim_runs_per_cpu_s"] = len(times) / sim_cpu if sim_cpu > 0 else float("nan")
    shutil.rmtree(staging, ignore_errors=True)
    return out


# --- 2. realistic writes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DropPlan:
    name: str
    start_offset_s: float
    steps: tuple[tuple[str, tuple[int, ...], float], ...]  # (file, chunk sizes, pause after)
    first_pause_s: float
    chunk_pause_s: float


def plan_scanner_drops(n: int, *, seed: int = 6, spacing_s: float = 0.05) -> list[DropPlan]:
    """A seeded schedule, identical for both tools: folder first, then 3-5 files, some chunked."""
    rng = random.Random(seed)
    plans = []
    for i in range(n):
        steps = []
        for j in range(rng.randint(3, 5)):
            size = rng.randint(20_000, 200_000)
            chunks = rng.choice((1, 1, 2, 3))  # about half the files arrive in chunks
            sizes = tuple(size // chunks for _ in range(chunks))
            steps.append((f"scan-{j:02d}.pdf", sizes, rng.uniform(0.05, 0.2)))
        plans.append(
            DropPlan(
                name=f"scan-{i:04d}",
                start_offset_s=i * spacing_s,
                steps=tuple(steps),
                first_pause_s=rng.uniform(0.05, 0.2),
                chunk_pause_s=rng.uniform(0.05, 0.1),
            )
        )
    return plans


def _write_drop(watch: Path, plan: DropPlan, t0: float) -> float:
    """Write one drop as a scanner does; return the wall time of its last write (close)."""
    delay = t0 + plan.start_offset_s - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    folder = watch / plan.name
    folder.mkdir()
    time.sleep(plan.first_pause_s)
    finished = time.time()
    for k, (fname, sizes, pause) in enumerate(plan.steps):
        with (folder / fname).open("wb") as fh:
            for c, size in enumerate(sizes):
                if c:
                    time.sleep(plan.chunk_pause_s)
                fh.write(b"%PDF" + b"x" * (size - 4) if c == 0 else b"y" * size)
                fh.flush()
        finished = time.time()
        if k < len(plan.steps) - 1:
            time.sleep(pause)
    return finished


def realistic(kind: str, n: int, wd: Path) -> dict[str, Any]:
    """n drops written file by file: runs on incomplete drops, duplicates, misses, latency."""
    watch, _ = _dirs(wd)
    plans = plan_scanner_drops(n)
    expected = {L.input_dir(p.name) for p in plans}
    completed: dict[str, float] = {}
    with L.Simulator(wd, "sim", run_seconds=RUN_SECONDS) as sim:
        tool, _ = start_tool(kind, sim=sim, watch=watch, wd=wd, tag=kind)
        try:
            t0 = time.monotonic() + 0.2
            with ThreadPoolExecutor(max_workers=32) as pool:
                futures = {p.name: pool.submit(_write_drop, watch, p, t0) for p in plans}
                for name, fut in futures.items():
                    completed[L.input_dir(name)] = fut.result(timeout=120)
            sim.tail.wait_distinct(expected, timeout=SETTLE_S + 20)
            sim.tail.wait_quiet(quiet_s=2.0, timeout=20)
            runs = list(sim.tail.poll())
        finally:
            tool.stop()
    incomplete = [r for r in runs if r.input_dir in completed and r.time < completed[r.input_dir]]
    first_run: dict[str, float] = {}
    for r in runs:
        first_run.setdefault(r.input_dir, r.time)
    lat_ms = [
        (first_run[d] - completed[d] - (SETTLE_S if kind == "watcher" else 0.0)) * 1000
        for d in completed
        if d in first_run
    ]
    return {
        "kind": kind,
        "n": n,
        **_counts(runs, expected),
        "incomplete_runs": len(incomplete),
        "incomplete_drops": len({r.input_dir for r in incomplete}),
        "write_span_s": max(completed.values()) - min(completed.values()),
        "latency_p50_ms": L.percentile(lat_ms, 50),
        "latency_p99_ms": L.percentile(lat_ms, 99),
    }


# --- 3. latency -------------------------------------------------------------------------------


def latency(kind: str, n: int, wd: Path, *, spacing_s: float = 0.03) -> dict[str, Any]:
    """n complete drops renamed in one at a time: run created - rename (- settle), p50/p99."""
    watch, staging = _dirs(wd)
    names = _names(n, "lat")
    expected = {L.input_dir(x) for x in names}
    L.stage_drops(staging, names)
    renamed: dict[str, float] = {}
    with L.Simulator(wd, "sim", run_seconds=RUN_SECONDS) as sim:
        tool, _ = start_tool(kind, sim=sim, watch=watch, wd=wd, tag=kind)
        try:
            t0 = time.monotonic()
            for i, name in enumerate(names):
                delay = t0 + i * spacing_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                # The rename IS the last write: the drop is complete from this instant.
                before = time.time()
                os.rename(staging / name, watch / name)
                renamed[L.input_dir(name)] = (before + time.time()) / 2
            sim.tail.wait_distinct(expected, timeout=SETTLE_S + 20)
            sim.tail.wait_quiet(quiet_s=1.0, timeout=10)
            runs = list(sim.tail.poll())
        finally:
            tool.stop()
    first_run: dict[str, float] = {}
    for r in runs:
        first_run.setdefault(r.input_dir, r.time)
    settle = SETTLE_S if kind == "watcher" else 0.0
    lat_ms = [(first_run[d] - t - settle) * 1000 for d, t in renamed.items() if d in first_run]
    return {
        "kind": kind,
        "n": n,
        "spacing_ms": spacing_s * 1000,
        **_counts(runs, expected),
        "p50_ms": L.percentile(lat_ms, 50),
        "p99_ms": L.percentile(lat_ms, 99),
        "max_ms": max(lat_ms) if lat_ms else float("nan"),
    }


# --- 4. footprint -----------------------------------------------------------------------------


def build_tree(watch: Path, folders: int = 1000, files_per_folder: int = 100) -> int:
    """folders x files small files (a few bytes each: footprint is about entries, not bytes)."""
    count = 0
    for i in range(folders):
        d = watch / f"archive-{i:04d}"
        d.mkdir(parents=True)
        for j in range(files_per_folder):
            fd = os.open(d / f"page-{j:03d}.pdf", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, b"%%PDF-1.4 %d\n" % j)
            finally:
                os.close(fd)
            count += 1
    return count


def _idle_window(sample: Any, seconds: float) -> tuple[float, float]:
    """CPU% of one core over `seconds`, and the wall seconds actually measured."""
    c0, w0 = sample(), time.monotonic()
    time.sleep(seconds)
    c1, w1 = sample(), time.monotonic()
    return (c1 - c0) / L.CLK_TCK / (w1 - w0) * 100, w1 - w0


def footprint(wd: Path, *, idle_s: float, folders: int = 1000, files: int = 100) -> dict[str, Any]:
    """Startup to READY, idle CPU% and peak RSS on a submitted 100,000-file tree; both tools."""
    watch = wd / "watch"
    t = time.monotonic()
    total = build_tree(watch, folders, files)
    out: dict[str, Any] = {"files": total, "folders": folders, "build_s": time.monotonic() - t}
    expected = {L.input_dir(f"archive-{i:04d}") for i in range(folders)}
    # Runs COMPLETE at once here: the steady state of an idle daemon is "everything finished".
    with L.Simulator(wd, "sim", run_seconds=0.0) as sim:
        # First pass: let the daemon submit the whole tree, so the measured runs are all idle.
        tool, _ = start_tool("watcher", sim=sim, watch=watch, wd=wd, tag="watcher-initial")
        try:
            t = time.monotonic()
            out["initial_complete"] = sim.tail.wait_distinct(expected, timeout=180, quiet_s=30)
            out["initial_submit_s"] = time.monotonic() - t
            sim.tail.wait_quiet(quiet_s=1.0, timeout=10)
        finally:
            tool.stop()
        state = wd / "watcher-initial-state"
        runs_before = len(sim.tail.poll())
        for observer in ("inotify", "polling"):
            config = L.write_config(
                wd / f"watcher-{observer}.yaml",
                hub_url=sim.url,
                watch=watch,
                state_dir=state,
                settle_seconds=SETTLE_S,
                max_concurrency=MAX_CONCURRENCY,
                observer=observer,
                poll_interval_seconds=5.0,
            )
            daemon = L.DaemonProc(config=config, log=wd / f"watcher-{observer}.log").start()
            try:
                ready_s = daemon.wait_ready(120)
                time.sleep(2.0)  # READY is sent right after the scan; let post-READY work end
                pid = daemon.pid
                cpu_pct, window = _idle_window(lambda p=pid: L.proc_cpu_ticks(p), idle_s)
                out[observer] = {
                    "ready_s": ready_s,
                    "idle_cpu_pct": cpu_pct,
                    "window_s": window,
                    "peak_rss_mb": L.proc_status_kb(pid, "VmHWM") / 1024,
                    "rss_mb": L.proc_status_kb(pid, "VmRSS") / 1024,
                }
            finally:
                daemon.stop()
        out["reposted_after_restart"] = len(sim.tail.poll()) - runs_before
        base = L.BaselineProc(watch=watch, hub_url=sim.url, log=wd / "baseline.log")
        try:
            ready_s = base.wait_ready(120)
            time.sleep(2.0)
            pgid = base.pgid
            cpu_pct, window = _idle_window(lambda g=pgid: L.group_cpu_ticks(g), idle_s)
            out["baseline"] = {
                "ready_s": ready_s,
                "idle_cpu_pct": cpu_pct,
                "window_s": window,
                "peak_rss_mb": L.group_kb(pgid, "VmHWM") / 1024,
                "rss_mb": L.group_kb(pgid, "VmRSS") / 1024,
                "processes": len(L.group_pids(pgid)),
            }
        finally:
            base.stop()
    shutil.rmtree(watch, ignore_errors=True)
    return out


# --- 5. crash ---------------------------------------------------------------------------------


def crash(kind: str, n: int, wd: Path, *, kill_at_fraction: float = 0.3) -> dict[str, Any]:
    """kill -9 during an n-drop burst, restart the same tool: duplicates and misses."""
    watch, staging = _dirs(wd)
    names = _names(n)
    expected = {L.input_dir(x) for x in names}
    L.stage_drops(staging, names)
    kill_at = max(1, int(n * kill_at_fraction))
    with L.Simulator(wd, "sim", run_seconds=RUN_SECONDS) as sim:
        tool, _ = start_tool(kind, sim=sim, watch=watch, wd=wd, tag=kind)
        try:
            L.rename_in(staging, watch, names)
            deadline = time.monotonic() + 60
            while len(sim.tail.poll()) < kill_at and time.monotonic() < deadline:
                time.sleep(0.002)
            tool.kill9()
            runs_at_kill = len(sim.tail.poll())
        finally:
            tool.stop()
        time.sleep(0.2)
        runs_at_restart = len(sim.tail.poll())
        tool, _ = start_tool(kind, sim=sim, watch=watch, wd=wd, tag=kind)
        try:
            sim.tail.wait_distinct(expected, timeout=60, quiet_s=5.0)
            # Reconcile and rescans happen within seconds; give late duplicates time to show.
            sim.tail.wait_quiet(quiet_s=3.0, timeout=30)
            runs = list(sim.tail.poll())
        finally:
            tool.stop()
    shutil.rmtree(staging, ignore_errors=True)
    return {
        "kind": kind,
        "n": n,
        "runs_at_kill": runs_at_kill,
        # Requests that were in flight when the kill landed still reach the simulator.
        "runs_in_flight_at_kill": runs_at_restart - runs_at_kill,
        **_counts(runs, expected),
    }


def run_in_thread_with_timeout(fn: Any, timeout: float) -> Any:
    """Run fn() and fail loudly if it hangs (every workload is bounded in time)."""
    box: list[Any] = []
    err: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            err.append(exc)

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        raise TimeoutError(f"workload exceeded {timeout:.0f} s")
    if err:
        raise err[0]
    return box[0]
