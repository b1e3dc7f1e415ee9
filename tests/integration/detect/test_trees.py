"""Odd trees end to end: unusual names, symlinks, unreadable folders, 10,000 files in one drop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import wait_until
from tests.integration.detect.harness import (
    PROJECT_ROOT,
    SETTLE,
    make_rule,
    rels,
    stays_false,
    write,
)


def test_names_with_spaces_unicode_and_newlines(watch: Path, start) -> None:
    """Spaces, unicode and newlines in folder and file names are handled; 0-byte files count."""
    running = start([make_rule(watch)])
    drop = "Scans März 日本\nline two"
    names = ["a b.pdf", "ü✓.txt", "new\nline.txt", "zero"]
    for name in names:
        write(watch / drop / name, "" if name == "zero" else name)
    ready = wait_until(lambda: running.get(drop), timeout=5, what="odd names")
    assert rels(ready) == sorted(names)
    assert {f.rel: f.size for f in ready.scan.files}["zero"] == 0


def test_symlinks_are_never_followed(watch: Path, tmp_path: Path, start) -> None:
    """Symlinks inside a drop (and at the top level) are skipped, never followed out of watch."""
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "s")
    running = start([make_rule(watch)])
    write(watch / "linked" / "real.txt", "r")
    (watch / "linked" / "to-dir").symlink_to(outside, target_is_directory=True)
    (watch / "linked" / "to-file").symlink_to(outside / "secret.txt")
    (watch / "top-link").symlink_to(outside, target_is_directory=True)
    ready = wait_until(lambda: running.get("linked"), timeout=5, what="linked")
    assert rels(ready) == ["real.txt"]
    assert ready.scan.skipped == ("to-dir", "to-file")
    assert stays_false(lambda: running.get("top-link"), 3 * SETTLE)


def test_ten_thousand_files_in_one_drop(watch: Path, tmp_path: Path, start) -> None:
    """A drop of 10,000 (0-byte) files is emitted once, complete."""
    running = start([make_rule(watch)])
    big = watch / "big"
    big.mkdir()
    for i in range(10_000):
        (big / f"page-{i:05d}.tif").touch()
    ready = wait_until(lambda: running.get("big"), timeout=15, what="big drop")
    assert len(ready.scan.files) == 10_000
    assert ready.scan.total_bytes() == 0
    assert stays_false(lambda: len(running.ready) > 1, 3 * SETTLE)


_UNREADABLE_SCRIPT = r"""
import asyncio, concurrent.futures.thread, json, os, sys, time
from pathlib import Path
from structlog.testing import capture_logs
from watcher.config import Rule
from watcher.detect import Detector

if os.geteuid() == 0:
    # chmod does not stop root: become `nobody` once everything is imported (the interpreter
    # lives under /root, which `nobody` cannot read).
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)

async def main():
    rule = Rule(name="r", watch=Path(sys.argv[1]), remote_dir="/in", deployment_id="d",
                settle_seconds=0.3)
    emitted = []
    async def emit(ready):
        emitted.append(ready.drop)
    det = Detector([rule], is_known=lambda r, d: False)
    with capture_logs() as logs:
        task = asyncio.create_task(det.run(emit))
        deadline = time.monotonic() + 10
        while "open" not in emitted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    print(json.dumps({"emitted": emitted, "events": [e["event"] for e in logs],
                      "unreadable": [e for e in logs if e["event"] == "drop.unreadable"]}))

asyncio.run(main())
"""


def test_permission_denied_folder_is_not_ready(tmp_path: Path) -> None:
    """An unreadable folder inside a drop keeps it from being ready, logged once; others go on.

    chmod does not stop root, so the detector runs in a subprocess that drops to `nobody`.
    """
    base = Path(tempfile.mkdtemp(prefix="detect-perm-"))
    try:
        base.chmod(0o755)
        watch = base / "watch"
        write(watch / "open" / "a.txt", "a")
        write(watch / "locked" / "b.txt", "b")
        write(watch / "locked" / "secret" / "c.txt", "c")
        for p in (watch, watch / "open", watch / "locked"):
            p.chmod(0o755)
        (watch / "locked" / "secret").chmod(0o000)
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(
            [sys.executable, "-c", _UNREADABLE_SCRIPT, str(watch)],
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
            env=env,
            cwd="/",
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["emitted"] == ["open"]
        assert len(result["unreadable"]) == 1
        entry = result["unreadable"][0]
        assert (entry["drop"], entry["error"]) == ("locked", "secret: permission denied")
        assert "detect.error" not in result["events"]
    finally:
        (base / "watch" / "locked" / "secret").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
