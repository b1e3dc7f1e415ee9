"""Issue 11's performance figures: upload throughput against `curl -T`, the daemon's peak RSS
while uploading a 2 GiB file, and the remote check's overhead on an instantly synced drive.

Everything runs on 127.0.0.1: the simulator (`python -m watcher hub-sim`) in its own process,
the real daemon (`python -m watcher run`) on real folders, curl as the reference client.

    .venv/bin/python bench/upload_bench.py [--big-mib 1024] [--small 1000] [--rss-mib 2048]

Writes its figures as JSON on stdout and a Markdown table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = os.environ.get("BENCH_DAEMON_PYTHON", sys.executable)
TOKEN = "bench-token-0123456789"
DEPLOYMENT = "01902d6f-bb35-74cb-bd27-c09b38bbf20a"
REMOTE = "acme/Finance/fs/Google Drive/My Drive/drops"
MIB = 1024 * 1024


class Sim:
    """The simulator in its own process, so its CPU is not the client's."""

    def __init__(self, *args: str) -> None:
        argv = [sys.executable, "-m", "watcher", "hub-sim", "--port", "0", "--token", TOKEN]
        self.proc = subprocess.Popen(
            [*argv, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        if not ready:
            raise RuntimeError("the simulator printed no URL")
        self.url = self.proc.stdout.readline().decode().strip()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def make_file(path: Path, size: int) -> None:
    """A file of random-looking bytes (so nothing compresses), written in 8 MiB blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(8 * MIB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def curl_upload(sim: Sim, files: list[Path]) -> float:
    """Seconds for one curl process to PUT every file into a batch (one keep-alive
    connection, as `curl -T "{a,b,c}" URL/` does)."""
    batch = _post_json(sim, "/v2/batches", {"name": "curl"})["id"]
    url = f"{sim.url}/v2/batches/{batch}/files/"
    listing = ",".join(str(f) for f in files)
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-sS", "-f", "-o", "/dev/null", "-H", f"Authorization: Bearer {TOKEN}",
         "-H", "Content-Type: application/octet-stream", "-T", "{" + listing + "}", url],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _post_json(sim: Sim, path: str, body: dict[str, Any]) -> Any:
    out = subprocess.run(
        ["curl", "-sS", "-f", "-H", f"Authorization: Bearer {TOKEN}", "-H",
         "Content-Type: application/json", "-d", json.dumps(body), f"{sim.url}{path}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def daemon_config(tmp: Path, sim: Sim, watch: Path, rule: dict[str, Any]) -> Path:
    import yaml

    data = {
        "hub": {"base_url": sim.url, "token_env": "AIHUB_BENCH_TOKEN", "max_concurrency": 4},
        "state_dir": str(tmp / "state"),
        "rules": [
            {
                "name": "bench",
                "watch": str(watch),
                "remote_dir": REMOTE,
                "deployment_id": DEPLOYMENT,
                "settle_seconds": 0.5,
                **rule,
            }
        ],
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class Daemon:
    def __init__(self, config: Path) -> None:
        env = {**os.environ, "AIHUB_BENCH_TOKEN": TOKEN}
        env.pop("NOTIFY_SOCKET", None)
        self.log = config.parent / "daemon.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "watcher", "run", "-c", str(config), "--log-format", "json"],
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                out.append(event)
        return out

    def wait_for(self, name: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[0]
            rejected = self.events("drop.rejected")
            if rejected:
                raise RuntimeError(f"the drop was rejected: {rejected[0]['error']}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError(name)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self._out.close()


def move_in(watch: Path, staging: Path) -> None:
    staging.rename(watch / staging.name)


def watcher_upload(tmp: Path, sim: Sim, staging: Path) -> tuple[float, float, float]:
    """(MB/s the daemon logged for the upload, its seconds, its peak RSS MB) for one drop."""
    watch = tmp / "watch"
    watch.mkdir()
    # The API documents 50 MB per file (the default limit); the benchmark measures big files.
    rule = {"source": "upload", "upload": {"max_file_bytes": 8192 * MIB}}
    config = daemon_config(tmp, sim, watch, rule)
    daemon = Daemon(config)
    try:
        daemon.wait_for("daemon.ready", 60)
        move_in(watch, staging)
        done = daemon.wait_for("upload.done")
        return done["bytes"] / done["seconds"] / 1e6, done["seconds"], daemon.peak_rss_mb()
    finally:
        daemon.stop()


def remote_check_overhead(tmp: Path, sim_args: list[str]) -> float:
    """Seconds from `drop.ready` (local settle done) to `remote.verified`, 3 files, no lag."""
    drive = tmp / "drive"
    watch = drive / REMOTE
    watch.mkdir(parents=True)
    sim = Sim(*sim_args, "--drive-root", str(drive))
    try:
        config = daemon_config(tmp, sim, watch, {"verify_remote": True})
        daemon = Daemon(config)
        try:
            daemon.wait_for("daemon.ready", 60)
            staging = tmp / "staging" / "three"
            for i in range(3):
                make_file(staging / f"page-{i}.pdf", 200_000)
            move_in(watch, staging)
            ready = daemon.wait_for("drop.ready", 60)
            verified = daemon.wait_for("remote.verified", 60)
            return _ts(verified) - _ts(ready)
        finally:
            daemon.stop()
    finally:
        sim.stop()


def _ts(event: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--small-kib", type=int, default=100)
    parser.add_argument("--rss-mib", type=int, default=2048)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="aihub-upload-bench-"))
    sim_args = ["--max-put-bytes", str(4096 * MIB)]
    out: dict[str, Any] = {}
    try:
        out.update(_throughput(base, sim_args, args))
        note("peak RSS while uploading ...")
        rss_drop = base / "rss" / "staging" / "huge"
        make_file(rss_drop / "huge.bin", args.rss_mib * MIB)
        sim = Sim(*sim_args)
        try:
            _, seconds, rss = watcher_upload(base / "rss", sim, rss_drop)
        finally:
            sim.stop()
        out["rss_upload_mib"], out["rss_peak_mb"], out["rss_seconds"] = args.rss_mib, rss, seconds
        note("remote check overhead ...")
        out["remote_check_overhead_s"] = remote_check_overhead(base / "remote", sim_args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, indent=2))
    print(_table(out), file=sys.stderr)
    return 0


def _throughput(base: Path, sim_args: list[str], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cases = {
        "big": (f"one {args.big_mib} MiB file", [("big.bin", args.big_mib * MIB)]),
        "small": (
            f"{args.small} files of {args.small_kib} KiB",
            [(f"f{i:05d}.pdf", args.small_kib * 1024) for i in range(args.small)],
        ),
    }
    for key, (label, files) in cases.items():
        note(f"{label} ...")
        staging = base / key / "staging" / key
        for name, size in files:
            make_file(staging / name, size)
        total = sum(size for _, size in files)
        sim = Sim(*sim_args)
        try:
            curl_s = curl_upload(sim, [staging / name for name, _ in files])
            ours, seconds, rss = watcher_upload(base / key, sim, staging)
        finally:
            sim.stop()
        out[key] = {
            "label": label,
            "bytes": total,
            "curl_mb_s": total / curl_s / 1e6,
            "watcher_mb_s": ours,
            "ratio": ours / (total / curl_s / 1e6),
            "watcher_peak_rss_mb": rss,
            "watcher_seconds": seconds,
        }
    return out


def _table(out: dict[str, Any]) -> str:
    lines = [
        "| upload to the simulator | curl -T MB/s | aihub-watcher MB/s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for key in ("big", "small"):
        r = out[key]
        lines.append(
            f"| {r['label']} | {r['curl_mb_s']:.0f} | {r['watcher_mb_s']:.0f} | {r['ratio']:.2f}x |"
        )
    lines.append("")
    lines.append(
        f"Peak RSS of the daemon uploading a {out['rss_upload_mib']} MiB file: "
        f"{out['rss_peak_mb']:.1f} MB ({out['rss_seconds']:.1f} s)."
    )
    lines.append(
        "Remote check on an instantly synced drive, 3 files: "
        f"{out['remote_check_overhead_s'] * 1000:.0f} ms from drop.ready to remote.verified."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
