"""Throughput of the AI Hub simulator: run submissions per second over loopback keep-alive.

Starts `python -m watcher hub-sim` in a child process (client and server don't share a GIL),
fires run submissions from N threads, each with its own keep-alive httpx.Client, and from one
connection alone; then times run listing once the runs exist. Reports the simulator process's
CPU per submission, i.e. its capacity per core. Not a test: run it by hand.

    .venv/bin/python bench/hubsim_throughput.py [--runs 5000] [--threads 16] [--single-runs 2000]
        [--record]

BENCH_WATCHER_SRC=/path/to/dir runs the simulator from a copy of the package there (e.g. an
older commit's `watcher/`, from `git archive`), to compare two versions on the same machine.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

TOKEN = "bench-token"
ROOT = Path(__file__).resolve().parents[1]
# The directory holding the `watcher/` package the simulator runs from (cwd of the child).
WATCHER_SRC = Path(os.environ.get("BENCH_WATCHER_SRC", str(ROOT)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    label: str
    requests: int
    seconds: float
    statuses: Counter[int]
    server_cpu_s: float | None  # CPU the simulator process used during the phase (Linux only)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def server_us_per_run(self) -> str:
        """Simulator CPU microseconds per submission."""
        if not self.server_cpu_s:
            return "n/a"
        return f"{self.server_cpu_s / self.requests * 1e6:.0f}"

    @property
    def server_capacity(self) -> str:
        """Submissions per simulator CPU second: what one core sustains given a faster client."""
        if not self.server_cpu_s:
            return "n/a"
        return f"{self.requests / self.server_cpu_s:.0f}"


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` (from /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_delta(pid: int, before: float | None) -> float | None:
    after = process_cpu_s(pid)
    return None if before is None or after is None else after - before


@contextmanager
def simulator(record: Path | None) -> Iterator[tuple[str, int]]:
    """A simulator child process; yields (API root URL, pid), then SIGTERMs it, checks exit 0."""
    argv = [sys.executable, "-m", "watcher", "hub-sim", "--port", "0", "--token", TOKEN]
    if record is not None:
        argv += ["--record", str(record)]
    proc = subprocess.Popen(
        argv,
        cwd=WATCHER_SRC,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        if not ready:
            raise SystemExit("the simulator printed no URL within 30 s")
        yield proc.stdout.readline().strip(), proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        if code != 0:
            print(f"warning: simulator exited {code}", file=sys.stderr)


def submit_many(url: str, *, deployment: str, count: int, statuses: Counter[int]) -> None:
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        for i in range(count):
            resp = client.post(
                f"/v2/apps/deployments/{deployment}/runs",
                json={"input_dir": f"org/ws/fs/Drive/bench/{deployment}/{i}"},
            )
            statuses[resp.status_code] += 1


def concurrent(url: str, pid: int, *, runs: int, threads: int) -> Result:
    """`runs` submissions split over `threads` threads, each with its own connection."""
    per_thread = [runs // threads + (1 if i < runs % threads else 0) for i in range(threads)]
    counters = [Counter[int]() for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        barrier.wait()
        submit_many(url, deployment=f"dep-{i}", count=per_thread[i], statuses=counters[i])

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    cpu_before = process_cpu_s(pid)
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return Result(
        label=f"{threads} connections",
        requests=runs,
        seconds=elapsed,
        statuses=sum(counters, Counter[int]()),
        server_cpu_s=cpu_delta(pid, cpu_before),
    )


def single(url: str, pid: int, *, runs: int) -> Result:
    statuses: Counter[int] = Counter()
    cpu_before = process_cpu_s(pid)
    started = time.perf_counter()
    submit_many(url, deployment="dep-single", count=runs, statuses=statuses)
    return Result(
        label="1 connection",
        requests=runs,
        seconds=time.perf_counter() - started,
        statuses=statuses,
        server_cpu_s=cpu_delta(pid, cpu_before),
    )


def time_list(url: str, params: dict[str, str | int], repeat: int = 20) -> tuple[float, int]:
    """Median milliseconds of one GET /v2/apps/runs, and how many runs it returned."""
    samples = []
    count = 0
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        for _ in range(repeat):
            started = time.perf_counter()
            resp = client.get("/v2/apps/runs", params=params)
            samples.append((time.perf_counter() - started) * 1000)
            resp.raise_for_status()
            count = len(resp.json()["runs"])
    samples.sort()
    return samples[len(samples) // 2], count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="submissions, concurrent phase")
    parser.add_argument("--threads", type=int, default=16, help="client threads (connections)")
    parser.add_argument("--single-runs", type=int, default=2000, help="submissions, 1 connection")
    parser.add_argument(
        "--record", action="store_true", help="simulator writes --record JSONL (as in compare.py)"
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        simulator(Path(tmp, "record.jsonl") if args.record else None) as (url, pid),
    ):
        submit_many(url, deployment="warmup", count=50, statuses=Counter())
        results = [
            concurrent(url, pid, runs=args.runs, threads=args.threads),
            single(url, pid, runs=args.single_runs),
        ]
        total = 50 + args.runs + args.single_runs
        lists: list[tuple[str, dict[str, str | int]]] = [
            ("list limit=100 (newest)", {"limit": 100}),
            ("list deployment_id, limit=100", {"deployment_id": "dep-3", "limit": 100}),
            ("list status=FAILED (scan all)", {"status": "FAILED"}),
            (f"list all ({total} runs)", {"limit": total}),
        ]
        list_results = [(label, *time_list(url, params, repeat=10)) for label, params in lists]

    print(
        f"simulator throughput, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs,"
        f" simulator from {WATCHER_SRC}{', --record' if args.record else ''}"
    )
    print(
        f"{'phase':<20} {'requests':>9} {'seconds':>8} {'runs/s':>8}"
        f" {'sim CPU s':>10} {'us/run':>7} {'runs/CPU-s':>11}  statuses"
    )
    for r in results:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(r.statuses.items()))
        cpu = "n/a" if r.server_cpu_s is None else f"{r.server_cpu_s:.2f}"
        print(
            f"{r.label:<20} {r.requests:>9} {r.seconds:>8.2f} {r.per_second:>8.0f}"
            f" {cpu:>10} {r.server_us_per_run:>7} {r.server_capacity:>11}  {statuses}"
        )
    print("(runs/s is the client's figure; us/run and runs/CPU-s are the simulator's own CPU)")
    print(f"{'listing':<32} {'runs':>9} {'median ms':>10}")
    for label, ms, count in list_results:
        print(f"{label:<32} {count:>9} {ms:>10.1f}")
    bad = sum(n for r in results for code, n in r.statuses.items() if code != 202)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
