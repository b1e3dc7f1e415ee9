"""`aihub-watcher explain PATH`: the rule, the drop, the exact request, readiness and the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.daemon_helpers import DEPLOYMENT, REMOTE, make_drop, write_config

NO_HUB = "http://127.0.0.1:9/api"  # nothing listens on the discard port


def explain(config: Path, path: Path, *args: str, token: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "AIHUB_TEST_TOKEN"}
    if token is not None:
        env["AIHUB_TEST_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "watcher", "explain", "-c", str(config), str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def explain_json(config: Path, path: Path, **kw: Any) -> tuple[int, dict[str, Any]]:
    result = explain(config, path, "--json", **kw)
    return result.returncode, json.loads(result.stdout)


def codes(out: dict[str, Any]) -> list[str]:
    return [b["code"] for b in out["blockers"]]


@pytest.fixture
def setup(tmp_path: Path):
    watch = tmp_path / "watch"
    watch.mkdir()

    def config(hub_url: str = NO_HUB, **rule: Any) -> Path:
        return write_config(
            tmp_path / "c.yaml",
            hub_url=hub_url,
            watch=watch,
            state_dir=tmp_path / "state",
            rule={"settle_seconds": 0.05, **rule},
        )

    return watch, config


def test_a_settled_drop_is_ready_with_the_exact_request(setup):
    """Settled, nothing in progress: exit 0, `ready yes`, the POST path and the body the
    submitter sends (input_dir, output_dir, version, settings with the drop tag)."""
    watch, config = setup
    cfg = config(output_dir="out/{drop}", version="2", settings={"tags": ["t1"]})
    make_drop(watch, "inv-1")
    result = wait_until(
        lambda: (r := explain(cfg, watch / "inv-1" / "page-0.pdf")).returncode == 0 and r,
        what="the drop settles",
    )
    lines = result.stdout.splitlines()
    assert "ready    yes" in lines
    assert f"request  POST /v2/apps/deployments/{DEPLOYMENT}/runs" in lines
    assert "ledger   not seen yet" in result.stdout
    _, out = explain_json(cfg, watch / "inv-1")
    assert out["verdict"] == "ready" and out["drop"] == "inv-1" and out["files"] == 2
    assert out["request"]["body"] == {
        "input_dir": f"{REMOTE}/inv-1",
        "output_dir": "out/inv-1",
        "version": "2",
        "settings": {"tags": ["t1", "aihub-watcher:drop=<new drop id>"]},
    }


def test_a_drop_that_just_changed_is_not_settled(setup):
    """Files written a moment ago under settle_seconds: 60 -> exit 1, `not_settled`."""
    watch, config = setup
    cfg = config(settle_seconds=60)
    (watch / "d").mkdir()
    (watch / "d" / "a.pdf").write_bytes(b"x")
    code, out = explain_json(cfg, watch / "d")
    assert (code, out["verdict"], codes(out)) == (1, "waiting", ["not_settled"])
    assert "settle_seconds is 60" in out["blockers"][0]["message"]


def test_a_partial_file_keeps_the_drop_waiting(setup):
    """A `.part` file in the drop: exit 1, `in_progress` naming it, however old it is."""
    watch, config = setup
    cfg = config()
    drop = make_drop(watch, "d")
    (drop / "big.pdf.part").write_bytes(b"half")
    old = time.time() - 3600
    os.utime(drop / "big.pdf.part", (old, old))
    code, out = explain_json(cfg, drop / "big.pdf.part")
    assert code == 1 and "in_progress" in codes(out)
    assert "big.pdf.part" in out["blockers"][0]["message"]
    assert out["note"] == "big.pdf.part is in progress: the drop waits for it"


def test_a_marker_rule_waits_for_its_marker_then_is_ready_at_once(setup):
    """ready_marker set: `marker_missing` naming the marker file; once it exists, exit 0
    even inside settle_seconds (the marker is the producer's "done")."""
    watch, config = setup
    cfg = config(ready_marker=".ready", settle_seconds=60)
    old = time.time() - 3600
    drop = make_drop(watch, "d")
    for f in drop.iterdir():
        os.utime(f, (old, old))
    code, out = explain_json(cfg, drop)
    assert code == 1 and "marker_missing" in codes(out)
    assert str(watch / "d.ready") in " ".join(b["message"] for b in out["blockers"])
    (watch / "d.ready").write_text("")
    code, out = explain_json(cfg, watch / "d.ready")
    assert (code, out["drop"], out["drop_kind"], out["blockers"]) == (0, "d", "marker", [])


def test_files_missing_on_the_synced_drive_keep_the_drop_waiting(setup, hub_sim, tmp_path: Path):
    """verify_remote with a drive that lags: `remote_missing` naming the files, from real HEADs
    to the simulator; once the drive catches up, ready."""
    watch, config = setup
    drive = tmp_path / "drive"
    (drive / REMOTE).parent.mkdir(parents=True)
    (drive / REMOTE).symlink_to(watch, target_is_directory=True)
    hub_sim.options.drive_root = drive
    hub_sim.options.sync_lag_s = 3600
    cfg = config(hub_url=hub_sim.url, verify_remote=True)
    drop = make_drop(watch, "d")
    code, out = wait_until(
        lambda: (
            (r := explain_json(cfg, drop, token="t")) and codes(r[1]) == ["remote_missing"] and r
        ),
        what="settled, only the remote copy missing",
    )
    assert code == 1
    assert "2 of 2 files" in out["blockers"][0]["message"]
    assert "page-0.pdf (missing)" in out["blockers"][0]["message"]
    hub_sim.options.sync_lag_s = 0
    code, out = explain_json(cfg, drop, token="t")
    assert (code, out["blockers"]) == (0, [])
    assert {r.method for r in hub_sim.requests} == {"HEAD"}  # nothing but HEADs


def test_an_unreachable_hub_is_reported_as_unchecked_not_guessed(setup):
    """verify_remote but nothing listens at base_url: `remote_unchecked`, exit 1."""
    watch, config = setup
    cfg = config(verify_remote=True)
    drop = make_drop(watch, "d")
    code, out = explain_json(cfg, drop, token="secret-token-123")
    assert code == 1 and "remote_unchecked" in codes(out)
    result = explain(cfg, drop, token="secret-token-123")
    assert "secret-token-123" not in result.stdout + result.stderr


def test_a_submitted_drop_shows_its_run_and_exits_0(setup, tmp_path: Path):
    """The ledger has the drop submitted: exit 0, its state, run id, status and attempts."""
    from watcher.ledger import Ledger

    watch, config = setup
    cfg = config(settle_seconds=60)
    make_drop(watch, "d")
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        row = ledger.record_ready(
            rule="main", drop="d", fingerprint="f", input_dir=f"{REMOTE}/d", deployment_id="x"
        )
        ledger.begin_submit(row.id, now=time.time())
        ledger.mark_submitted(
            row.id, run_id="run-42", run_status="RUNNING", response="{}", now=time.time()
        )
    result = explain(cfg, watch / "d")
    assert result.returncode == 0, result.stdout
    assert "ready    submitted" in result.stdout
    assert f"ledger   submitted (drop {row.id}, attempts 1)" in result.stdout
    assert "run      run-42 (RUNNING)" in result.stdout
    _, out = explain_json(cfg, watch / "d")
    assert out["request"]["body"]["settings"]["tags"] == [f"aihub-watcher:drop={row.id}"]


def test_a_path_no_rule_watches_exits_2_naming_the_rules(setup, tmp_path: Path):
    """Outside every watch folder: exit 2, and the rules' folders are listed."""
    watch, config = setup
    cfg = config()
    result = explain(cfg, tmp_path / "elsewhere" / "x.pdf")
    assert result.returncode == 2
    assert f"no rule watches {tmp_path / 'elsewhere' / 'x.pdf'}; rules watch: main → {watch}" in (
        result.stdout
    )


def test_names_the_scan_skips_are_no_drops(setup):
    """A hidden folder and a loose file in a folder-mode watch folder: exit 2 with the reason."""
    watch, config = setup
    cfg = config()
    (watch / ".hidden").mkdir()
    (watch / "loose.pdf").write_bytes(b"x")
    code, out = explain_json(cfg, watch / ".hidden")
    assert (code, out["verdict"], out["reason"]) == (2, "no_drop", "hidden names are never drops")
    code, out = explain_json(cfg, watch / "loose.pdf")
    assert code == 2 and "only folders are drops" in out["reason"]


def test_an_upload_rule_shows_the_upload_plan(setup):
    """source: upload: the batch name, each file with its flattened remote name and size."""
    watch, config = setup
    cfg = config(source="upload", remote_dir=None, upload={"workspace": "Finance"})
    drop = make_drop(watch, "scan-1", files=1, size=10)
    (drop / "sub").mkdir()
    (drop / "sub" / "b.pdf").write_bytes(b"12345")
    result = explain(cfg, drop)
    assert "upload   batch 'main-scan-1-<new drop id>' in Finance: 2 files, 19 B" in result.stdout
    assert "sub/b.pdf → sub__b.pdf (5 B)" in result.stdout
    _, out = explain_json(cfg, drop)
    assert out["request"]["body"] == {"settings": {"tags": ["aihub-watcher:drop=<new drop id>"]}}
    assert {f["name"] for f in out["upload"]["files"]} == {"page-0.pdf", "sub__b.pdf"}


def test_a_loose_file_in_files_mode_is_ready_once_the_group_settles(setup):
    """drop: files: a loose file waits for the group to settle, then is ready to be batched;
    the request is not known before its batch folder exists."""
    watch, config = setup
    cfg = config(drop="files", settle_seconds=60)
    (watch / "a.pdf").write_bytes(b"x")
    code, out = explain_json(cfg, watch / "a.pdf")
    assert (code, out["drop_kind"], codes(out)) == (1, "loose", ["not_settled"])
    assert out["request"] is None and "new batch folder" in out["request_note"]
    cfg = config(drop="files", settle_seconds=0.05)
    code, out = wait_until(lambda: (r := explain_json(cfg, watch / "a.pdf"))[0] == 0 and r)
    assert out["verdict"] == "ready"


def test_outside_active_hours_even_a_ledger_ready_drop_waits(setup, tmp_path: Path):
    """A rule whose active_hours open only the day after tomorrow: a drop the ledger has `ready`
    waits (exit 1, `outside_schedule` saying when it opens); with the rule always open it is
    ready (exit 0)."""
    from datetime import UTC, datetime

    from watcher.config.schedule import DAY_NAMES
    from watcher.ledger import Ledger

    watch, config = setup
    day = DAY_NAMES[(datetime.now(UTC).weekday() + 2) % 7]
    make_drop(watch, "d")
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        ledger.record_ready(
            rule="main", drop="d", fingerprint="f", input_dir=f"{REMOTE}/d", deployment_id="x"
        )
    code, out = explain_json(config(active_hours=day, tz="Asia/Tokyo"), watch / "d")
    assert (code, codes(out), out["ledger"]["state"]) == (1, ["outside_schedule"], "ready")
    message = out["blockers"][0]["message"]
    assert f"waiting for its schedule (opens {day} 00:00 Asia/Tokyo)" in message
    code, out = explain_json(config(), watch / "d")
    assert (code, out["verdict"], out["blockers"]) == (0, "ready", [])


def test_a_drop_folder_whose_name_is_not_utf8_waits_for_a_rename_and_prints(setup):
    """A folder name with an undecodable byte (the daemon rejects it): explain names it with
    the byte as \\xNN, as the log and the ledger do, says why, and exits 1; it does not crash."""
    watch, config = setup
    cfg = config()
    bad = Path(os.fsdecode(bytes(watch) + b"/scan\xff"))
    bad.mkdir()
    (bad / "a.pdf").write_bytes(b"x")
    result = explain(cfg, bad / "a.pdf")
    assert result.returncode == 1, result.stderr
    assert "drop    scan\\xff (folder: " in result.stdout
    assert "- the folder name is not valid UTF-8" in result.stdout
    code, out = explain_json(cfg, bad)
    assert (code, out["drop"], codes(out), out["request"]) == (1, "scan\\xff", ["bad_name"], None)


def test_a_drop_folder_gone_after_its_run_shows_its_archived_row(setup, tmp_path: Path):
    """The folder went away (on_complete: move, or deleted) and the ledger archived its row:
    explain shows that row and its run (exit 0), not "the ledger does not know it"; a drop that
    vanished before it was sent says so (exit 2)."""
    from watcher.ledger import Ledger

    watch, config = setup
    cfg = config()
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        row = ledger.record_ready(
            rule="main", drop="done", fingerprint="f", input_dir=f"{REMOTE}/done", deployment_id="x"
        )
        ledger.begin_submit(row.id, now=time.time())
        ledger.mark_submitted(
            row.id, run_id="run-7", run_status="RUNNING", response="{}", now=time.time()
        )
        ledger.set_run_status(row.id, run_status="COMPLETE", response="{}", now=time.time())
        ledger.archive(row.id, now=time.time())
        early = ledger.record_ready(
            rule="main",
            drop="early",
            fingerprint="f",
            input_dir=f"{REMOTE}/early",
            deployment_id="x",
        )
        ledger.archive(early.id, now=time.time())
    result = explain(cfg, watch / "done")
    assert result.returncode == 0, result.stdout
    assert f"ledger  complete (drop {row.id}, attempts 1, archived)" in result.stdout
    assert "run     run-7 (COMPLETE)" in result.stdout
    code, out = explain_json(cfg, watch / "early")
    assert (code, out["verdict"], out["ledger"]["archived"]) == (2, "no_drop", True)
    assert "went away before it was submitted" in out["reason"]
