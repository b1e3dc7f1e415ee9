"""Plumbing for the side-by-side benchmark: simulator, daemon and baseline processes, /proc probes.

Talks to aihub-watcher only as a user would (the `python -m watcher` command, a config file, JSON
logs, NOTIFY_SOCKET); imports no `watcher` module, so the watcher's code never runs in this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Where `python -m watcher` runs the daemon from (its cwd comes first on sys.path): this checkout,
# or a patched copy given in BENCH_WATCHER_SRC to measure a proposed change without editing it.
WATCHER_SRC = Path(os.environ.get("BENCH_WATCHER_SRC", str(ROOT)))
BENCH = ROOT / "bench"
PYTHON = sys.executable
# The daemon under test runs on an interpreter with only the runtime dependencies, as a user
# installs it (run_all.sh builds one): the dev venv's extras (rich, click, pygments) are loaded by
# httpx and structlog when present and would add ~7 MB to every footprint figure.
DAEMON_PYTHON = os.environ.get("BENCH_DAEMON_PYTHON", PYTHON)
# Not a secret: the simulator on 127.0.0.1 accepts exactly this value.
TOKEN = "bench-token-0123456789"
TOKEN_ENV = "AIHUB_BENCH_TOKEN"
DEPLOYMENT = "01902d6f-bb35-74cb-bd27-c09b38bbf20a"
REMOTE = "acme/Finance/fs/Google Drive/My Drive/drops"
CONTEXT = "acme"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
RUNS_PATH_SUFFIX = f"/v2/apps/deployments/{DEPLOYMENT}/runs"

# Every process this module starts, so the harness can stop them all, even on Ctrl-C.
_STARTED: list[subprocess.Popen[bytes]] = []


def stop_all() -> None:
    """SIGKILL every process group we started that is still alive (EXIT safety net)."""
    for proc in _STARTED:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def spawn(argv: Sequence[str], *, env: dict[str, str] | None = None, **kw: Any) -> Any:
    """Popen in its own session and process group (the whole pipeline can be signalled at once,
    by its id), remembered for stop_all() and listed in $BENCH_PIDFILE for run_all.sh."""
    proc = subprocess.Popen(list(argv), env=env, start_new_session=True, **kw)
    _STARTED.append(proc)
    # run_all.sh kills these groups by id on exit, even if this process was killed first.
    pidfile = os.environ.get("BENCH_PIDFILE")
    if pidfile:
        with open(pidfile, "a", encoding="ascii") as fh:
            fh.write(f"{proc.pid}\n")
    return proc


def input_dir(name: str) -> str:
    return f"{REMOTE}/{name}"


# --- /proc probes -----------------------------------------------------------------------------


def proc_cpu_ticks(pid: int, *, children: bool = False) -> int:
    """utime+stime (plus reaped children's cutime+cstime when asked) of one process, in ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def proc_status_kb(pid: int, key: str) -> int:
    """A kB field of /proc/PID/status (VmHWM, VmRSS); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_pids(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (a shell pipeline started with setsid)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def group_cpu_ticks(pgid: int) -> int:
    return sum(proc_cpu_ticks(p, children=True) for p in group_pids(pgid))


def group_kb(pgid: int, key: str) -> int:
    return sum(proc_status_kb(p, key) for p in group_pids(pgid))


def code_version() -> str:
    """The commit being measured, and whether watcher/ differs from it (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "--no-optional-locks", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "--no-optional-locks", "diff", "--quiet", "HEAD", "--", "watcher"],
                check=False,
                cwd=ROOT,
                capture_output=True,
                timeout=10,
            ).returncode
            != 0
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    src = "" if WATCHER_SRC == ROOT else f", daemon run from {WATCHER_SRC}"
    return f"{head}{' + uncommitted changes in watcher/' if dirty else ''}{src}"


def machine_info() -> dict[str, str]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model or platform.processor() or "unknown",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "os": _os_name(),
    }


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


# --- the simulator ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """A run creation the simulator recorded (POST .../runs answered 202, or created then lost)."""

    input_dir: str
    time: float  # unix seconds, when the simulator had created the run


class RecordTail:
    """Incrementally reads the simulator's JSONL record file; keeps the run creations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.runs: list[RunRecord] = []
        self.other_requests = 0

    def poll(self) -> list[RunRecord]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return self.runs
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            rec = json.loads(line)
            created = rec["status"] in (202, 0)  # 0: created, response deliberately lost
            if rec["method"] == "POST" and rec["path"].endswith("/runs") and created:
                body = rec.get("body") or {}
                self.runs.append(RunRecord(input_dir=body.get("input_dir", ""), time=rec["time"]))
            else:
                self.other_requests += 1
        return self.runs

    def distinct(self) -> set[str]:
        return {r.input_dir for r in self.poll()}

    def wait_distinct(self, expected: set[str], *, timeout: float, quiet_s: float = 10.0) -> bool:
        """Wait until every expected input_dir has a run, or no new run came for `quiet_s`
        (a tool that misses drops stops posting); False when some are still missing."""
        deadline = time.monotonic() + timeout
        seen = len(self.poll())
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            if expected <= self.distinct():
                return True
            time.sleep(0.02)
            now_seen = len(self.poll())
            if now_seen != seen:
                seen, last_change = now_seen, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                break
        return expected <= self.distinct()

    def wait_quiet(self, *, quiet_s: float, timeout: float) -> None:
        """Wait until no new run was created for `quiet_s` (late duplicates would show here)."""
        deadline = time.monotonic() + timeout
        seen = len(self.poll())
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now_seen = len(self.poll())
            if now_seen != seen:
                seen, last_change = now_seen, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                return


class Simulator:
    """`python -m watcher hub-sim` in its own process (its CPU is not the watcher's)."""

    def __init__(self, workdir: Path, name: str, *, run_seconds: float = 0.0) -> None:
        self.record = workdir / f"{name}.record.jsonl"
        self.proc = spawn(
            [
                PYTHON,
                "-m",
                "watcher",
                "hub-sim",
                "--port",
                "0",
                "--token",
                TOKEN,
                "--record",
                str(self.record),
                "--run-seconds",
                str(run_seconds),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        if not ready:
            self.stop()
            raise RuntimeError("the simulator printed no URL within 30 s")
        self.url = self.proc.stdout.readline().decode().strip()
        self.tail = RecordTail(self.record)

    def cpu_s(self) -> float:
        return proc_cpu_ticks(self.proc.pid) / CLK_TCK

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- aihub-watcher ----------------------------------------------------------------------------


def write_config(
    path: Path,
    *,
    hub_url: str,
    watch: Path,
    state_dir: Path,
    settle_seconds: float,
    max_concurrency: int = 16,
    observer: str = "inotify",
    poll_interval_seconds: float = 5.0,
) -> Path:
    data = {
        "hub": {
            "base_url": hub_url,
            "context": CONTEXT,
            "token_env": TOKEN_ENV,
            "max_concurrency": max_concurrency,
        },
        "state_dir": str(state_dir),
        "log_level": "info",
        "shutdown_timeout_seconds": 10,
        "rules": [
            {
                "name": "bench",
                "watch": str(watch),
                "remote_dir": REMOTE,
                "deployment_id": DEPLOYMENT,
                "settle_seconds": settle_seconds,
                # The benchmarks measure detection and submission; the simulator has no drive.
                "verify_remote": False,
                "observer": observer,
                "poll_interval_seconds": poll_interval_seconds,
            }
        ],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass(slots=True, kw_only=True)
class DaemonProc:
    """`python -m watcher run` with JSON logs in a file and READY=1 caught on NOTIFY_SOCKET."""

    config: Path
    log: Path
    proc: Any = None
    started_at: float = 0.0  # monotonic, just before spawning
    ready_at: float | None = None  # monotonic, when READY=1 arrived
    _sock: socket.socket | None = None
    _sock_path: Path | None = None
    _thread: threading.Thread | None = None
    _extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, extra_env: dict[str, str] | None = None) -> DaemonProc:
        self._sock_path = self.log.with_suffix(".notify.sock")
        with contextlib.suppress(FileNotFoundError):
            self._sock_path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self._sock_path))
        self.ready_at = None
        env = {**os.environ, TOKEN_ENV: TOKEN, "NOTIFY_SOCKET": str(self._sock_path)}
        env.update(extra_env or {})
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.proc = spawn(
                [
                    DAEMON_PYTHON,
                    "-m",
                    "watcher",
                    "run",
                    "-c",
                    str(self.config),
                    "--log-format",
                    "json",
                ],
                cwd=WATCHER_SRC,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        sock.settimeout(0.5)
        while True:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                if self.proc is not None and self.proc.poll() is not None:
                    return
                continue
            except OSError:
                return
            if b"READY=1" in data.split(b"\n") and self.ready_at is None:
                self.ready_at = time.monotonic()

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from spawn to READY=1."""
        deadline = time.monotonic() + timeout
        while self.ready_at is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon not READY within {timeout} s; see {self.log}")
            time.sleep(0.005)
        return self.ready_at - self.started_at

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._close()
        return int(code)

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._sock_path.unlink()

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        with contextlib.suppress(FileNotFoundError), self.log.open(encoding="utf-8") as fh:
            for line in fh:
                if f'"{name}"' not in line:
                    continue
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if event.get("event") == name:
                        out.append(event)
        return out


# --- the baseline script ----------------------------------------------------------------------


class BaselineProc:
    """bench/baseline_inotify_curl.sh as its own process group (bash, inotifywait, loop, curl)."""

    def __init__(self, *, watch: Path, hub_url: str, log: Path, parallel: int = 0) -> None:
        self.log = log
        self.err = log.with_suffix(".stderr")
        env = {
            **os.environ,
            "AIHUB_TOKEN": TOKEN,
            "AIHUB_CONTEXT": CONTEXT,
            "PARALLEL": str(parallel),
        }
        with log.open("ab") as out, self.err.open("ab") as err:
            self.started_at = time.monotonic()
            self.proc = spawn(
                [
                    "bash",
                    str(BENCH / "baseline_inotify_curl.sh"),
                    str(watch),
                    hub_url,
                    DEPLOYMENT,
                    REMOTE,
                ],
                env=env,
                stdout=out,
                stderr=err,
            )
        self.ready_after: float | None = None

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until inotifywait says 'Watches established.'."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.err.read_text(errors="replace") if self.err.exists() else ""
            if "Watches established" in text:
                self.ready_after = time.monotonic() - self.started_at
                return self.ready_after
            if self.proc.poll() is not None:
                raise RuntimeError(f"baseline exited {self.proc.returncode}: {text[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("baseline: no 'Watches established' in time")
            time.sleep(0.005)

    @property
    def pgid(self) -> int:
        return int(self.proc.pid)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
            self.proc.wait()
        # The loop's last curl may outlive bash for a moment: reap the group.
        deadline = time.monotonic() + 5
        while group_pids(self.pgid) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
            time.sleep(0.02)

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


# --- drops ------------------------------------------------------------------------------------


def stage_drops(staging: Path, names: Sequence[str], *, files: int = 2, size: int = 2048) -> None:
    """Complete drops outside `watch`, on the same filesystem, ready to be renamed in."""
    staging.mkdir(parents=True, exist_ok=True)
    payload = [b"%PDF-1.4\n" + bytes([65 + i % 26]) * size for i in range(files)]
    for name in names:
        d = staging / name
        d.mkdir()
        for i, data in enumerate(payload):
            (d / f"page-{i}.pdf").write_bytes(data)


def rename_in(staging: Path, watch: Path, names: Sequence[str]) -> tuple[float, float]:
    """Rename every staged drop into `watch` at once; (first, last) rename wall times."""
    first = time.time()
    for name in names:
        os.rename(staging / name, watch / name)
    return first, time.time()


@contextlib.contextmanager
def workdir(base: Path, name: str) -> Iterator[Path]:
    path = base / name
    path.mkdir(parents=True, exist_ok=False)
    yield path


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]
