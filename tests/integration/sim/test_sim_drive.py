"""The simulated drive: HEAD /v2/files from a local folder, with a sync lag, and what runs see."""

from __future__ import annotations

import email.utils
import os
import time
from urllib.parse import quote

from tests.conftest import wait_until
from tests.sim_helpers import submit

DROP = "org/ws/fs/Google Drive/drops/invoices/d1"


def _write(root, rel, data, *, age_s=0.0):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def _head(client, remote):
    return client.head("/v2/files/" + quote(remote, safe="/"))


def test_drive_file_and_folder_metadata(client, sim, tmp_path):
    """A file under drive_root answers 200 with its size; a folder 200 as JSON; else 404."""
    sim.options.drive_root = tmp_path
    path = _write(tmp_path, f"{DROP}/scan #1.pdf", b"x" * 1234)
    resp = _head(client, f"{DROP}/scan #1.pdf")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["content-length"] == "1234"
    modified = email.utils.parsedate_to_datetime(resp.headers["last-modified"])
    assert abs(modified.timestamp() - path.stat().st_mtime) < 1
    folder = _head(client, DROP)
    assert folder.status_code == 200 and folder.headers["content-type"] == "application/json"
    assert _head(client, f"{DROP}/missing.pdf").status_code == 404
    assert client.head("/v2/files/org/%2E%2E/org/ws").status_code == 404  # no way out of the root


def test_sync_lag_hides_a_file_until_it_is_old_enough(client, sim, tmp_path):
    """With sync_lag_s a fresh file is 404 and turns 200 once its mtime is that old."""
    sim.options.drive_root = tmp_path
    sim.options.sync_lag_s = 60.0
    path = _write(tmp_path, f"{DROP}/a.pdf", b"abc")
    assert _head(client, f"{DROP}/a.pdf").status_code == 404
    then = time.time() - 61
    os.utime(path, (then, then))
    assert _head(client, f"{DROP}/a.pdf").status_code == 200
    path.write_bytes(b"abcdef")  # written again: not synced again yet
    assert _head(client, f"{DROP}/a.pdf").status_code == 404


def test_sync_lag_elapses_in_real_time(client, sim, tmp_path):
    """A file written now is 404, then 200 with its size no sooner than sync_lag_s later."""
    sim.options.drive_root = tmp_path
    sim.options.sync_lag_s = 0.5
    path = _write(tmp_path, f"{DROP}/late.pdf", b"z" * 10)
    written = path.stat().st_mtime
    assert _head(client, f"{DROP}/late.pdf").status_code == 404
    resp = wait_until(
        lambda: (r := _head(client, f"{DROP}/late.pdf")).status_code == 200 and r,
        timeout=10,
        what="the file to sync",
    )
    assert time.time() - written >= 0.5
    assert resp.headers["content-length"] == "10"


def test_added_paths_still_answer_beside_the_drive(client, sim, tmp_path):
    """Paths added with add_path answer as before when a drive_root is set."""
    sim.options.drive_root = tmp_path
    sim.options.sync_lag_s = 60.0
    sim.add_path("org/ws/fs/Other/x.pdf", size=5)
    resp = _head(client, "org/ws/fs/Other/x.pdf")
    assert resp.status_code == 200 and resp.headers["content-length"] == "5"


def test_run_records_the_files_it_saw_on_the_drive(client, sim, tmp_path):
    """A run on input_dir records the synced files (relative path, size), not the lagging ones."""
    sim.options.drive_root = tmp_path
    sim.options.sync_lag_s = 60.0
    _write(tmp_path, f"{DROP}/a.pdf", b"a" * 3, age_s=120)
    _write(tmp_path, f"{DROP}/sub/dir/b.pdf", b"b" * 7, age_s=120)
    _write(tmp_path, f"{DROP}/c.pdf", b"still syncing")
    assert submit(client, input_dir=DROP + "/").status_code == 202
    (run,) = sim.runs
    assert run["inputs"] == [
        {"path": "a.pdf", "size": 3, "sha256": None},
        {"path": "sub/dir/b.pdf", "size": 7, "sha256": None},
    ]


def test_run_inputs_include_added_paths_and_a_missing_folder_is_empty(client, sim, tmp_path):
    """add_path files under input_dir count as its files; a folder nowhere gives no inputs."""
    sim.add_path("org/in/x.pdf", size=4)
    sim.add_path("org/inbox/y.pdf", size=9)  # a sibling with a common prefix: not inside
    submit(client, input_dir="org/in")
    sim.options.drive_root = tmp_path
    submit(client, input_dir="org/nowhere")
    first, second = sim.runs
    assert first["inputs"] == [{"path": "x.pdf", "size": 4, "sha256": None}]
    assert second["inputs"] == []
