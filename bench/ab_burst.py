"""A/B of the daemon on one burst: each version of `watcher/` in turn, alternating, same machine.

    .venv/bin/python bench/ab_burst.py N PAIRS REF [REF ...]

REF is a commit (its `watcher/` is exported with `git archive` to /tmp/aihub-ab/REF) or
NAME=DIR (a directory holding a patched `watcher/`). Each round runs `bench_workloads`' burst of
N drops once per REF, PAIRS rounds, and prints one JSON line per run: runs/s (first to last run),
the daemon's CPU per run in ms, and that CPU split by thread ("main" is the asyncio loop; "other"
the HTTP workers, watchdog and executor threads) into user and system time, from
/proc/PID/task/*/stat at the first rename and at the last run. Needs the runtime venv that
run_all.sh builds (bench/out/runtime-venv). With SPY=PREFIX, py-spy records each run (raw
format, 200 Hz, all threads; SPY_GIL=1 for --gil, SPY_IDLE=1 for --idle) into PREFIX-REF-ROUND.txt.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
os.environ.setdefault("BENCH_DAEMON_PYTHON", str(BENCH / "out" / "runtime-venv" / "bin" / "python"))


def export(ref: str) -> tuple[str, Path]:
    if "=" in ref:
        name, where = ref.split("=", 1)
        return name, Path(where)
    where = Path(tempfile.gettempdir()) / "aihub-ab" / ref
    if not where.exists():
        where.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "watcher"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return ref, where


def thread_ticks(pid: int) -> dict[str, tuple[int, int]]:
    """utime and stime of each thread of `pid`, by thread id."""
    out: dict[str, tuple[int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[task.name] = (int(fields[11]), int(fields[12]))
    return out


def py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    flags = ["--gil"] if os.environ.get("SPY_GIL") else []
    flags += ["--idle"] if os.environ.get("SPY_IDLE") else []
    cmd = [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--threads"]
    return subprocess.Popen([*cmd, "--nonblocking", *flags, "-o", out])


def one_burst(src: Path, n: int, spy_out: str | None) -> dict[str, Any]:
    os.environ["BENCH_WATCHER_SRC"] = str(src)
    import bench_lib
    import bench_workloads

    lib = importlib.reload(bench_lib)
    work = importlib.reload(bench_workloads)
    wd = Path(tempfile.mkdtemp(prefix="aihub-ab-"))
    try:
        watch, staging = work._dirs(wd)
        names = work._names(n)
        expected = {lib.input_dir(x) for x in names}
        lib.stage_drops(staging, names)
        with lib.Simulator(wd, "sim", run_seconds=work.RUN_SECONDS) as sim:
            tool, _ = work.start_tool("watcher", sim=sim, watch=watch, wd=wd, tag="w")
            assert tool.daemon is not None
            pid = tool.daemon.pid
            spy = py_spy(pid, spy_out) if spy_out else None
            if spy is not None:
                time.sleep(1.5)  # attached
            before, cpu0 = thread_ticks(pid), tool.cpu_s()
            lib.rename_in(staging, watch, names)
            sim.tail.wait_distinct(expected, timeout=60 + n / 20)
            cpu1, after = tool.cpu_s(), thread_ticks(pid)
            runs = list(sim.tail.poll())
            tool.stop()
            if spy is not None:
                spy.wait(timeout=60)
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    times = sorted(r.time for r in runs if r.input_dir in expected)
    split: dict[str, float] = {}
    for tid, (user, system) in after.items():
        who = "main" if tid == str(pid) else "other"
        user0, system0 = before.get(tid, (0, 0))
        for kind, ticks in (("usr", user - user0), ("sys", system - system0)):
            key = f"{who}.{kind}"
            split[key] = split.get(key, 0.0) + ticks / lib.CLK_TCK * 1000 / n
    return {
        "runs_per_s": round((len(times) - 1) / (times[-1] - times[0])),
        "cpu_ms_per_run": round((cpu1 - cpu0) * 1000 / n, 3),
        "duplicates": len(runs) - len({r.input_dir for r in runs}),
        "misses": len(expected - {r.input_dir for r in runs}),
        "threads_ms_per_run": {k: round(v, 3) for k, v in sorted(split.items())},
    }


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    n, pairs = int(argv[0]), int(argv[1])
    versions = [export(ref) for ref in argv[2:]]
    spy = os.environ.get("SPY")
    for round_ in range(pairs):
        for name, src in versions:
            spy_out = f"{spy}-{name}-{round_}.txt" if spy else None
            print(name, json.dumps(one_burst(src, n, spy_out)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
