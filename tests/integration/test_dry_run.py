"""`run --dry-run`: a real daemon that logs each request instead of sending it."""

from __future__ import annotations

from pathlib import Path

from tests.daemon_helpers import DEPLOYMENT, REMOTE, DaemonProcess, make_drop, write_config

RUNS_PATH = f"/v2/apps/deployments/{DEPLOYMENT}/runs"


def dry_run(config: Path, token: str) -> DaemonProcess:
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token}, args=["--dry-run"])
    daemon.wait_ready()
    return daemon


def test_dry_run_logs_the_exact_request_and_sends_nothing(sim, tmp_path: Path, token: str):
    """A folder drop and an upload drop: `run.dry_run` with the body or the upload plan; the
    simulator gets no POST, no batch, no upload, and no state_dir or ledger is created."""
    watch, scans, state = tmp_path / "watch", tmp_path / "scans", tmp_path / "state"
    watch.mkdir()
    scans.mkdir()
    upload_rule = {
        "name": "scans",
        "watch": str(scans),
        "source": "upload",
        "deployment_id": "dep-scans",
        "settle_seconds": 0.3,
        "upload": {"workspace": "Finance"},
    }
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=state,
        rule={"output_dir": "out/{rule}/{drop}", "settings": {"tags": ["nightly"]}},
        extra_rules=[upload_rule],
    )
    daemon = dry_run(config, token)
    make_drop(watch, "inv-1", files=2)
    make_drop(scans, "sc-1", files=1, size=10)
    (scans / "sc-1" / "sub").mkdir()
    (scans / "sc-1" / "sub" / "b.pdf").write_bytes(b"12345")
    [line] = daemon.wait_for("run.dry_run", drop="inv-1")
    [up] = daemon.wait_for("run.dry_run", drop="sc-1")

    assert line["level"] == "info"
    assert (line["rule"], line["deployment_id"]) == ("main", DEPLOYMENT)
    assert (line["method"], line["path"]) == ("POST", RUNS_PATH)
    assert line["body"] == {
        "input_dir": f"{REMOTE}/inv-1",
        "output_dir": "out/main/inv-1",
        "settings": {"tags": ["nightly", f"aihub-watcher:drop={line['drop_id']}"]},
    }
    assert up["path"] == "/v2/apps/deployments/dep-scans/runs"
    plan = up["upload"]
    assert plan["workspace"] == "Finance" and plan["file_count"] == 2
    assert plan["batch_name"] == f"scans-sc-1-{up['drop_id']}"
    files = {f["rel"]: (f["name"], f["size"]) for f in plan["files"]}
    assert files["sub/b.pdf"] == ("sub__b.pdf", 5)
    assert files["page-0.pdf"] == ("page-0.pdf", 14)

    assert daemon.stop() == 0
    assert daemon.find("run.dry_run", drop="inv-1") == [line]  # reported once
    assert sim.runs == [] and sim.batches == []
    assert not [r for r in sim.requests if r.method in ("POST", "PUT")]
    assert not state.exists()
    scratch = Path(daemon.find("dry_run.started")[0]["ledger"]).parent
    assert not scratch.exists()  # its own bookkeeping is gone with it


def test_dry_run_beside_a_real_daemon_skips_known_drops_and_leaves_the_ledger_alone(
    sim, tmp_path: Path, token: str
):
    """With the state-dir lock held and a ledger that knows one drop: the dry run starts, reports
    only the new drop, and the ledger file's bytes and mtime are unchanged."""
    from watcher.app.lock import StateDirLock
    from watcher.ledger import Ledger, ledger_path

    watch, state = tmp_path / "watch", tmp_path / "state"
    watch.mkdir()
    with Ledger.in_state_dir(state) as ledger:
        ledger.record_ready(
            rule="main", drop="old", fingerprint="f", input_dir=f"{REMOTE}/old", deployment_id="d"
        )
    path = ledger_path(state)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    make_drop(watch, "old")
    lock = StateDirLock(state)
    lock.acquire()  # what a real daemon on this state_dir holds
    try:
        config = write_config(tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=state)
        daemon = dry_run(config, token)
        make_drop(watch, "new")
        daemon.wait_for("run.dry_run", drop="new")
        assert daemon.stop() == 0
    finally:
        lock.release()
    assert daemon.find("run.dry_run", drop="old") == []
    assert daemon.find("dry_run.started")[0]["known"] == 1
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sim.runs == []


def test_dry_run_leaves_a_files_mode_rules_loose_files_in_place(sim, tmp_path: Path, token: str):
    """Files mode: the dry run names the batch folder the loose files would be moved into, once,
    and the files stay where the user put them (no batch folder, nothing renamed)."""
    watch, state = tmp_path / "watch", tmp_path / "state"
    watch.mkdir()
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=state,
        rule={"drop": "files"},
    )
    daemon = dry_run(config, token)
    for name in ("a.pdf", "b.pdf"):
        (watch / name).write_bytes(b"%PDF-1.4 " + name.encode())
    [planned] = daemon.wait_for("batch.dry_run")
    assert planned["rule"] == "main" and planned["files"] == 2
    assert sorted(planned["names"]) == ["a.pdf", "b.pdf"]
    (watch / "c.pdf").write_bytes(b"%PDF-1.4 c")
    [second] = daemon.wait_for("batch.dry_run", files=1)
    assert second["names"] == ["c.pdf"] and second["drop"] != planned["drop"]
    assert daemon.stop() == 0
    assert len(daemon.find("batch.dry_run")) == 2  # each file reported once
    assert sorted(p.name for p in watch.iterdir()) == ["a.pdf", "b.pdf", "c.pdf"]
    assert sim.runs == [] and not state.exists()
