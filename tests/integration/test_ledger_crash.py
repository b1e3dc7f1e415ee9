"""kill -9 a process writing ledger transitions at random moments: no corruption, no lost commit."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import wait_until
from watcher.ledger import Ledger
from watcher.model import DropState

# Writes transitions as fast as it can. After each method (or batch) returns, it prints
# "<drop id> <state>" and flushes: a printed line means "this was committed".
WRITER = r"""
import sys, time
from pathlib import Path
from watcher.ledger import Ledger
from watcher.model import SubmittedRun

ledger = Ledger(Path(sys.argv[1]))
tag = sys.argv[2]
out = sys.stdout

def say(drop_id, state):
    out.write(f"{drop_id} {state}\n")
    out.flush()

i = 0
while True:
    i += 1
    now = time.time()
    if i % 5 == 0:
        with ledger.batch():
            ds = [
                ledger.record_ready(rule="r", drop=f"{tag}/{i}/{k}", fingerprint="f",
                                    input_dir="in", deployment_id="dep")
                for k in range(8)
            ]
        for d in ds:
            say(d.id, "ready")
        ds = ledger.begin_submit_many([d.id for d in ds], now=now)
        for d in ds:
            say(d.id, "submitting")
        runs = [SubmittedRun(drop_id=d.id, run_id="run-" + d.id, run_status="RUNNING",
                             response="{}") for d in ds]
        for d in ledger.mark_submitted_many(runs, now=now):
            say(d.id, "submitted")
        continue
    d = ledger.record_ready(rule="r", drop=f"{tag}/{i}", fingerprint="f", input_dir="in",
                            deployment_id="dep")
    say(d.id, "ready")
    d = ledger.begin_submit(d.id, now=now)
    say(d.id, "submitting")
    if i % 7 == 0:
        d = ledger.schedule_retry(d.id, next_attempt_at=now + 60, error="503", now=now)
        say(d.id, "ready")
        continue
    d = ledger.mark_submitted(d.id, run_id="run-" + d.id, run_status="RUNNING",
                              response='{"id": "x"}', now=now)
    say(d.id, "submitted")
    if i % 2 == 0:
        d = ledger.set_run_status(d.id, run_status="COMPLETE", response="{}", now=now)
        say(d.id, "complete")
"""

# The states the file may hold after the writer printed a state: a later step may have been
# committed just before the kill, without its line.
REACHABLE = {
    "ready": {"ready", "submitting", "submitted", "complete"},
    "submitting": {"submitting", "submitted", "complete", "ready"},  # ready = retry scheduled
    "submitted": {"submitted", "complete"},
    "complete": {"complete"},
}


def count_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM drops").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet
    finally:
        conn.close()


def committed_lines(out: Path) -> list[tuple[str, str]]:
    """Complete lines only: the writer may die in the middle of the last one."""
    lines = out.read_text().splitlines(keepends=True)
    return [
        (parts[0], parts[1]) for parts in (line.split() for line in lines if line.endswith("\n"))
    ]


def test_kill_9_at_random_moments_loses_no_committed_write(tmp_path: Path) -> None:
    """5 writers SIGKILLed mid-stream: the file stays intact and every printed commit survives."""
    path = tmp_path / "ledger.sqlite3"
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)
    all_lines: list[tuple[str, str]] = []
    for rep in range(5):
        out = tmp_path / f"writer-{rep}.out"
        before = count_rows(path)
        target = before + rng.randint(5, 400)
        with out.open("w") as stdout:
            proc = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), f"rep{rep}"],
                stdout=stdout,
                stderr=subprocess.PIPE,
            )

        def reached(proc: subprocess.Popen[bytes] = proc, target: int = target) -> bool:
            return count_rows(path) >= target or proc.poll() is not None

        try:
            wait_until(
                reached,
                timeout=30,
                what=f"{target} rows (seed {seed})",
            )
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL

        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"seed {seed}"
        finally:
            conn.close()

        lines = committed_lines(out)
        assert lines, f"writer {rep} printed nothing (seed {seed})"
        all_lines += lines
        last: dict[str, str] = {}
        retried: set[str] = set()
        for drop_id, state in all_lines:
            if state == "ready" and last.get(drop_id) == "submitting":
                retried.add(drop_id)
            last[drop_id] = state
        with Ledger(path) as ledger:
            for drop_id, state in last.items():
                drop = ledger.get(drop_id)
                assert drop is not None, f"committed {drop_id} lost (rep {rep}, seed {seed})"
                assert drop.state.value in REACHABLE[state], (
                    f"{drop_id} printed {state} but the file says {drop.state} (seed {seed})"
                )
            for drop_id in retried:
                drop = ledger.get(drop_id)
                assert drop is not None
                assert drop.state is DropState.READY and drop.next_attempt_at is not None
    assert count_rows(path) >= len({drop_id for drop_id, _ in all_lines})
