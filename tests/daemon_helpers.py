"""Run the real daemon as a subprocess against the in-process simulator, and read its JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import wait_until

DEPLOYMENT = "01902d6f-bb35-74cb-bd27-c09b38bbf20a"
REMOTE = "acme/Finance/fs/Google Drive/My Drive/drops"


def write_config(
    path: Path,
    *,
    hub_url: str,
    watch: Path,
    state_dir: Path,
    token_file: Path | None = None,
    rule: dict[str, Any] | None = None,
    hub: dict[str, Any] | None = None,
    extra_rules: Iterable[dict[str, Any]] = (),
    state: dict[str, Any] | None = None,
    top: dict[str, Any] | None = None,
) -> Path:
    """A config with one rule `main` (plus `extra_rules`; `top`: more top-level keys, e.g.
    metrics), written atomically; `state` is the ledger's `state:` mapping (unset: SQLite in
    state_dir)."""
    hub_section: dict[str, Any] = {"base_url": hub_url, "max_concurrency": 8}
    if token_file is not None:
        hub_section["token_file"] = str(token_file)
    else:
        hub_section["token_env"] = "AIHUB_TEST_TOKEN"
    hub_section.update(hub or {})
    main_rule: dict[str, Any] = {
        "name": "main",
        "watch": str(watch),
        "remote_dir": REMOTE,
        "deployment_id": DEPLOYMENT,
        "settle_seconds": 0.3,
        # The simulator has no drive unless a test gives it one (tests of the remote check).
        "verify_remote": False,
    }
    main_rule.update(rule or {})
    data = {
        "hub": hub_section,
        "state_dir": str(state_dir),
        "shutdown_timeout_seconds": 5,
        "rules": [main_rule, *extra_rules],
        **(top or {}),
    }
    if state is not None:
        data["state"] = state
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path


def start_daemon(config: Path, token: str) -> DaemonProcess:
    """The daemon on `config` with the simulator's token (AIHUB_TEST_TOKEN), once READY."""
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    daemon.wait_ready()
    return daemon


def run_cli(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m watcher ARGS` as a user runs it: its output as text, its exit code unchecked."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def make_drop(watch: Path, name: str, files: int = 2, size: int = 100) -> Path:
    """Build a complete folder drop beside `watch`, then rename it in at once."""
    staging = watch.parent / ".staging" / name
    staging.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (staging / f"page-{i}.pdf").write_bytes(b"%PDF" + bytes([65 + i % 26]) * size)
    target = watch / name
    staging.rename(target)
    return target


# Every daemon a test starts; conftest kills the ones a failing test left running.
STARTED: list[DaemonProcess] = []


class DaemonProcess:
    """`python -m watcher run` with captured JSON log lines."""

    def __init__(
        self,
        config: Path,
        *,
        env: dict[str, str] | None = None,
        notify_socket: Path | None = None,
        args: Iterable[str] = (),
    ) -> None:
        STARTED.append(self)
        full_env = dict(os.environ)
        # Never talk to the test runner's own supervisor; a test may give a socket of its own.
        full_env.pop("NOTIFY_SOCKET", None)
        if notify_socket is not None:
            full_env["NOTIFY_SOCKET"] = str(notify_socket)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "watcher",
                "run",
                "-c",
                str(config),
                "--log-format",
                "json",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            text=True,
        )
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line)
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.events.append(event)

    def output(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e
                for e in self.events
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            ]

    def wait_for(self, event: str, *, timeout: float = 20, count: int = 1, **fields: Any) -> Any:
        def seen() -> list[dict[str, Any]] | None:
            found = self.find(event, **fields)
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.output()}")
            return None

        return wait_until(seen, timeout=timeout, what=f"log event {event} x{count}")

    def wait_ready(self, timeout: float = 20) -> None:
        self.wait_for("daemon.ready", timeout=timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout=timeout)
        self._close()
        return code

    def _close(self) -> None:
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._close()


def runs_by_input_dir(sim: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in sim.runs:
        counts[run["input_dir"]] = counts.get(run["input_dir"], 0) + 1
    return counts


def wait_runs(sim: Any, expected: set[str], *, timeout: float = 60) -> dict[str, int]:
    """Wait until every expected input_dir has at least one run; return the counts."""

    def done() -> dict[str, int] | None:
        counts = runs_by_input_dir(sim)
        return counts if expected <= counts.keys() else None

    return wait_until(done, timeout=timeout, what=f"runs for {len(expected)} drops")


def input_dir(name: str) -> str:
    return f"{REMOTE}/{name}"


def ledger_states(config: Path) -> dict[str, str]:
    """drop name -> state, as `aihub-watcher status --json` reports it."""
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "status", "--json", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return {d["drop"]: d["state"] for d in json.loads(result.stdout)["drops"]}


def wait_all_complete(config: Path, names: Iterable[str], timeout: float = 30) -> None:
    """Every drop reaches `complete` in the ledger (none stuck submitting/submitted)."""
    expected = set(names)

    def done() -> bool:
        states = ledger_states(config)
        return expected <= states.keys() and all(states[n] == "complete" for n in expected)

    wait_until(done, timeout=timeout, interval=0.3, what="every drop complete in the ledger")
