"""`aihub-watcher status`: counts at the top, --rule filters, human ages, --watch redraws."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.daemon_helpers import REMOTE, write_config
from watcher.cli.status_view import human_age

MIN, HOUR, DAY = 60, 3600, 86400


def status(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "status", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Two rules, `main` and `other`; the ledger holds 3 drops of main and 1 of other."""
    from watcher.ledger import Ledger

    watch = tmp_path / "watch"
    other = {
        "name": "other",
        "watch": str(tmp_path / "w2"),
        "remote_dir": "x",
        "deployment_id": "d",
    }
    cfg = write_config(
        tmp_path / "c.yaml",
        hub_url="http://127.0.0.1:9/api",
        watch=watch,
        state_dir=tmp_path / "state",
        extra_rules=[other],
    )
    now = time.time()
    with Ledger.in_state_dir(tmp_path / "state") as ledger:

        def add(rule: str, drop: str, age_s: float):
            return ledger.record_ready(
                rule=rule,
                drop=drop,
                fingerprint=drop,
                input_dir=f"{REMOTE}/{drop}",
                deployment_id="d",
                now=now - age_s,
            )

        add("main", "fresh", 2 * MIN + 5)
        sub = add("main", "hours", 3 * HOUR + 10 * MIN + 20)
        ledger.begin_submit(sub.id, now=now)
        ledger.mark_submitted(sub.id, run_id="run-7", run_status="RUNNING", response="{}", now=now)
        failed = add("main", "days", 4 * DAY + 2 * HOUR + 5 * MIN)
        ledger.mark_failed(failed.id, error="boom", now=now)
        add("other", "elsewhere", 30)
    return cfg


def test_human_ages_use_two_units_at_most():
    """42s, 2m 05s, 3h 10m, 4d 2h."""
    assert [human_age(s) for s in (42, 125, 3 * HOUR + 10 * MIN + 59, 4 * DAY + 2 * HOUR + 1)] == [
        "42s",
        "2m 05s",
        "3h 10m",
        "4d 2h",
    ]


def test_counts_come_first_per_state_and_per_rule_then_rows_with_human_ages(config: Path):
    """The first lines are the counts (all rules, then each rule); rows show ages like 3h 10m."""
    result = status(config)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "4 drops: ready 2, submitted 1, failed 1",
        "  main   ready 1, submitted 1, failed 1",
        "  other  ready 1",
    ]
    assert lines[4].startswith("DROP_ID")
    rows = {line.split()[2]: line for line in lines[5:]}
    assert re.search(r"\b2m 0[5-9]s\b", rows["fresh"])
    assert "3h 10m" in rows["hours"] and "run-7" in rows["hours"]
    assert "4d 2h" in rows["days"] and "boom" in rows["days"]


def test_rule_filter_narrows_rows_and_counts_and_unknown_rules_are_named(config: Path):
    """--rule other: its counts and rows only; --rule nope: exit 2 listing the known rules."""
    result = status(config, "--rule", "other")
    assert result.stdout.splitlines()[0] == "1 drop: ready 1"
    assert "elsewhere" in result.stdout and "fresh" not in result.stdout
    bad = status(config, "--rule", "other", "--rule", "nope")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "aihub-watcher: unknown rule 'nope'; known rules: main, other"


def test_json_keeps_state_and_rule_filters(config: Path):
    """--json with --rule and --state: filtered drops, counts of the rule, counts per rule."""
    out = json.loads(status(config, "--json", "--rule", "main", "--state", "failed").stdout)
    assert [d["drop"] for d in out["drops"]] == ["days"]
    assert out["counts"]["ready"] == 1 and out["counts"]["failed"] == 1
    assert list(out["counts_by_rule"]) == ["main"]


def test_watch_reprints_until_ctrl_c_then_exits_0(config: Path):
    """Not a terminal: plain snapshots one after another; SIGINT ends it with exit 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "status", "-c", str(config), "--watch", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    assert proc.stdout is not None
    try:
        while sum(line.startswith("4 drops: ") for line in seen) < 2:
            line = proc.stdout.readline()
            assert line, f"status --watch ended: {proc.stderr.read() if proc.stderr else ''}"
            seen.append(line)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        finally:
            proc.kill()  # never left running into later tests if Ctrl-C did not end it
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0
    assert "\x1b" not in "".join(seen)
    assert sum(line.startswith("every 0.2s, ") for line in seen) >= 2


def test_watch_on_a_terminal_clears_and_redraws_in_place(config: Path):
    """On a TTY each refresh starts with clear-screen; Ctrl-C exits 0."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "status", "-c", str(config), "--watch", "0.2"],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    data = b""

    def two_redraws() -> bool:
        nonlocal data
        if select.select([leader], [], [], 0.1)[0]:
            data += os.read(leader, 65536)
        return data.count(b"\x1b[H\x1b[2J") >= 2

    try:
        wait_until(two_redraws, timeout=20, interval=0.01, what="two redraws")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        finally:
            proc.kill()  # never left running into later tests if Ctrl-C did not end it
        os.close(leader)
    assert code == 0
    assert b"4 drops: " in data
