"""AI Hub sees the whole drop: the remote check of a synced drive, upload as a batch, results back
to disk — the real daemon on real folders against the simulator."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import wait_until
from tests.daemon_helpers import (
    REMOTE,
    DaemonProcess,
    input_dir,
    make_drop,
    runs_by_input_dir,
    wait_runs,
    write_config,
)

KIB = 1024
MIB = 1024 * KIB


def _start(config: Path, token: str) -> DaemonProcess:
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    daemon.wait_ready()
    return daemon


def _status(config: Path) -> dict[str, dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "watcher", "status", "--json", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return {d["drop"]: d for d in json.loads(out.stdout)["drops"]}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_lagging_sync_is_waited_for_never_posted_early(sim, tmp_path, token):
    """The drive shows files 1.5 s after their last change: no POST before every file is
    visible with its size; the run sees the whole drop."""
    drive = tmp_path / "drive"
    watch = drive / REMOTE  # the synced folder, as AI Hub's drive sees it
    watch.mkdir(parents=True)
    sim.options.drive_root = drive
    sim.options.sync_lag_s = 1.5
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=tmp_path / "s",
        rule={"verify_remote": True},
    )
    daemon = _start(config, token)
    make_drop(watch, "b1", files=3)
    (waiting,) = daemon.wait_for("remote.waiting", drop="b1")
    assert len(waiting["missing"]) == 3 and sim.runs == []
    wait_runs(sim, {input_dir("b1")})
    (run,) = sim.runs
    assert sorted(f["path"].rsplit("/", 1)[-1] for f in run["inputs"]) == [
        f"page-{i}.pdf" for i in range(3)
    ]
    newest = max((watch / "b1" / f"page-{i}.pdf").stat().st_mtime for i in range(3))
    assert run["start_timestamp"] / 1e9 >= newest + 1.5
    assert daemon.stop() == 0


def test_a_remote_file_of_the_wrong_size_holds_the_drop(sim, tmp_path, token):
    """The remote copy of one file is short: the drop waits in `waiting_remote`, status names
    the file and both sizes; once the copy is whole the drop runs."""
    drive, watch = tmp_path / "drive", tmp_path / "watch"
    watch.mkdir()
    sim.options.drive_root = drive
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=tmp_path / "s",
        rule={"verify_remote": True},
    )
    daemon = _start(config, token)
    local = make_drop(watch, "b1", files=2, size=1000)
    remote = drive / REMOTE / "b1"
    remote.mkdir(parents=True)
    shutil.copy(local / "page-0.pdf", remote / "page-0.pdf")
    (remote / "page-1.pdf").write_bytes((local / "page-1.pdf").read_bytes()[:500])
    daemon.wait_for("remote.waiting", drop="b1")
    wait_until(
        lambda: "local 1004 B, remote 500 B" in (_status(config)["b1"]["last_error"] or ""),
        what="status naming the short file",
    )
    assert _status(config)["b1"]["state"] == "waiting_remote" and sim.runs == []
    shutil.copy(local / "page-1.pdf", remote / "page-1.pdf")
    wait_runs(sim, {input_dir("b1")}, timeout=60)
    assert daemon.stop() == 0


def _upload_config(tmp_path: Path, sim: Any, watch: Path, **upload: Any) -> Path:
    return write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=tmp_path / "s",
        rule={
            "source": "upload",
            "upload": {"single_put_max_bytes": 1 * MIB, **upload},
        },
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _drop_in(watch: Path, name: str, files: dict[str, bytes]) -> Path:
    staging = watch.parent / ".staging" / name
    for rel, data in files.items():
        _write(staging / rel, data)
    staging.rename(watch / name)
    return watch / name


def test_an_upload_with_nested_files_and_a_big_one_runs_on_one_full_batch(sim, tmp_path, token):
    """Nested files are flattened (sub/b.pdf -> sub__b.pdf), a file over the single-PUT limit
    goes in parts, and the run starts on a batch holding every byte."""
    watch = tmp_path / "watch"
    watch.mkdir()
    sim.options.part_size = 256 * KIB
    config = _upload_config(tmp_path, sim, watch)
    daemon = _start(config, token)
    drop = _drop_in(
        watch,
        "scan-1",
        {"a.pdf": b"%PDF a", "sub/b.pdf": b"%PDF b" * 100, "big.bin": os.urandom(3 * MIB + 7)},
    )
    wait_until(lambda: sim.runs, timeout=30, what="the run")
    (run,) = sim.runs
    assert run["batch_id"] is not None and run["input_dir"] is None
    inputs = {f["path"].rsplit("/", 1)[-1]: f for f in run["inputs"]}
    assert set(inputs) == {"a.pdf", "sub__b.pdf", "big.bin"}
    for name, rel in (("a.pdf", "a.pdf"), ("sub__b.pdf", "sub/b.pdf"), ("big.bin", "big.bin")):
        assert inputs[name]["sha256"] == _sha(drop / rel), name
    parts = [r for r in sim.requests if r.method == "PUT" and "/parts/" in r.path]
    assert len(parts) == 13  # 3 MiB + 7 B in 256 KiB parts
    assert daemon.find("upload.done", drop="scan-1")
    assert daemon.stop() == 0


def test_kill_9_during_an_upload_gives_one_run_on_the_full_batch(sim, tmp_path, token):
    """kill -9 halfway through the parts, restart: the same batch is completed (at most one
    orphan), one run, every byte."""
    watch = tmp_path / "watch"
    watch.mkdir()
    sim.options.part_size = 64 * KIB
    sim.options.latency_ms = 20
    config = _upload_config(tmp_path, sim, watch, delete_batch=False)
    daemon = _start(config, token)
    drop = _drop_in(watch, "big", {"a.pdf": b"%PDF", "big.bin": os.urandom(4 * MIB)})
    wait_until(
        lambda: any(s["parts"] >= 10 for s in sim.upload_sessions),
        timeout=30,
        what="an upload under way",
    )
    daemon.kill()
    assert sim.runs == []
    sim.options.latency_ms = 0
    again = _start(config, token)
    wait_until(lambda: sim.runs, timeout=60, what="the run after restart")
    assert again.stop() == 0
    (run,) = sim.runs
    inputs = {f["path"].rsplit("/", 1)[-1]: f["sha256"] for f in run["inputs"]}
    assert inputs == {"a.pdf": _sha(drop / "a.pdf"), "big.bin": _sha(drop / "big.bin")}
    assert len(sim.batches) <= 2  # the run's batch, and at most one orphan


def test_a_symlink_out_of_the_drop_is_never_uploaded(sim, tmp_path, token):
    """A link to a file outside the drop is skipped with a warning that names it."""
    watch, outside = tmp_path / "watch", tmp_path / "outside"
    watch.mkdir()
    _write(outside / "secret.txt", b"not for AI Hub")
    config = _upload_config(tmp_path, sim, watch)
    daemon = _start(config, token)
    staging = tmp_path / ".staging" / "with-link"
    _write(staging / "a.pdf", b"%PDF")
    (staging / "secret.txt").symlink_to(outside / "secret.txt")
    staging.rename(watch / "with-link")
    wait_until(lambda: sim.runs, timeout=30, what="the run")
    (run,) = sim.runs
    assert [f["path"].rsplit("/", 1)[-1] for f in run["inputs"]] == ["a.pdf"]
    (warning,) = daemon.find("upload.skipped", drop="with-link")
    assert warning["names"] == ["secret.txt"] and warning["level"] == "warning"
    assert daemon.stop() == 0


def test_results_over_several_pages_are_merged_and_written_atomically(sim, tmp_path, token):
    """Results come 2 files per page: the JSON on disk holds all 5, written whole."""
    drive, results = tmp_path / "drive", tmp_path / "results"
    watch = drive / REMOTE  # the simulator makes one result per file the run saw there
    watch.mkdir(parents=True)
    sim.options.drive_root = drive
    sim.options.results_page_size = 2
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=tmp_path / "s",
        rule={"results_dir": f"{results}/{{rule}}"},
    )
    daemon = _start(config, token)
    make_drop(watch, "b1", files=5)
    (saved,) = daemon.wait_for("results.saved", drop="b1", timeout=30)
    path = results / "main" / "b1.json"
    assert saved["path"] == str(path) and saved["bytes"] == path.stat().st_size
    data = json.loads(path.read_text())
    assert len(data["files"]) == 5 and data["has_more"] is False
    pages = [r for r in sim.requests if r.method == "GET" and r.path.endswith("/results")]
    assert len(pages) == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["b1.json"]  # no temp file left
    assert _status(config)["b1"]["results"] == "saved"
    assert daemon.stop() == 0
    assert runs_by_input_dir(sim) == {input_dir("b1"): 1}
