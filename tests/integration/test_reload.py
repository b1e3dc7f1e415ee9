"""Hot reload against a running daemon: valid edits apply, broken edits change nothing."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.daemon_helpers import (
    DEPLOYMENT,
    DaemonProcess,
    input_dir,
    make_drop,
    runs_by_input_dir,
    wait_runs,
    write_config,
)
from watcher.cli import main
from watcher.config.schedule import DAY_NAMES


def test_editor_style_rename_adds_a_rule_and_it_runs(sim, tmp_path: Path, token: str):
    """Saving a new rule (write aside, rename over) starts watching its folder, no SIGHUP."""
    watch, other, state = tmp_path / "watch", tmp_path / "other", tmp_path / "state"
    for p in (watch, other, state):
        p.mkdir()
    config = write_config(tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=state)
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    daemon.wait_ready()
    second = {
        "name": "second",
        "watch": str(other),
        "remote_dir": "acme/Other/fs/Instabase Drive/in",
        "deployment_id": DEPLOYMENT,
        "settle_seconds": 0.3,
        "verify_remote": False,
    }
    write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=state, extra_rules=[second]
    )
    event = daemon.wait_for("config.reloaded")[0]
    assert event["added"] == ["second"] and event["removed"] == []
    make_drop(other, "x")
    make_drop(watch, "y")
    counts = wait_runs(sim, {"acme/Other/fs/Instabase Drive/in/x", input_dir("y")})
    assert set(counts.values()) == {1}
    assert daemon.stop() == 0


def test_broken_edit_is_rejected_with_one_error_and_nothing_changes(
    sim, tmp_path: Path, token: str
):
    """A typo on reload: one config.reload_failed with FILE:LINE:COL, old rules keep working."""
    watch, state = tmp_path / "watch", tmp_path / "state"
    watch.mkdir()
    state.mkdir()
    config = write_config(tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=state)
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    daemon.wait_ready()
    data = yaml.safe_load(config.read_text())
    data["rules"][0]["setle_seconds"] = 5
    text = yaml.safe_dump(data, sort_keys=False)
    tmp = tmp_path / "c.yaml.new"
    tmp.write_text(text)
    tmp.replace(config)
    failed = daemon.wait_for("config.reload_failed")[0]
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "setle_seconds" in ln)
    assert any(
        f"c.yaml:{line}:" in issue and "settle_seconds" in issue for issue in failed["issues"]
    )
    assert failed["level"] == "error"
    make_drop(watch, "still-works")
    wait_runs(sim, {input_dir("still-works")})
    assert daemon.stop() == 0
    assert not daemon.find("config.reloaded")
    assert len(daemon.find("config.reload_failed")) == 1
    assert runs_by_input_dir(sim) == {input_dir("still-works"): 1}


def test_sighup_applies_a_changed_rule_to_drops_not_yet_submitted(sim, tmp_path: Path, token: str):
    """Changing remote_dir and SIGHUP: the next drop uses the new AI Hub path."""
    watch, state = tmp_path / "watch", tmp_path / "state"
    watch.mkdir()
    state.mkdir()
    config = write_config(tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=state)
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    daemon.wait_ready()
    make_drop(watch, "before")
    wait_runs(sim, {input_dir("before")})
    write_config(
        config,
        hub_url=sim.url,
        watch=watch,
        state_dir=state,
        rule={"remote_dir": "acme/New/fs/Instabase Drive/in"},
    )
    daemon.signal(signal.SIGHUP)
    event = daemon.wait_for("config.reloaded")[0]
    assert event["changed"] == ["main"]
    make_drop(watch, "after")
    wait_runs(sim, {"acme/New/fs/Instabase Drive/in/after"})
    assert daemon.stop() == 0
    assert len(sim.runs) == 2


def test_a_reload_applies_a_new_log_level(sim, tmp_path: Path, token: str):
    """log_level: debug in a reloaded config turns debug lines on, without a restart."""
    watch = tmp_path / "watch"
    watch.mkdir()
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=tmp_path / "s"
    )
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    daemon.wait_ready()
    make_drop(watch, "before")
    daemon.wait_for("run.submitted", drop="before")
    assert not daemon.find("drop.detected", drop="before")
    data = yaml.safe_load(config.read_text())
    data["log_level"] = "debug"
    tmp = config.with_name("c.yaml.tmp")
    tmp.write_text(yaml.safe_dump(data))
    tmp.replace(config)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("config.reloaded")
    make_drop(watch, "after")
    (line,) = daemon.wait_for("drop.detected", drop="after")
    assert line["level"] == "debug"
    assert daemon.stop() == 0


def test_drops_wait_for_active_hours_and_go_when_an_edit_opens_them(
    sim, tmp_path: Path, token: str, capsys
):
    """A rule closed today keeps its drops `ready` (status says when it opens); saving the
    config with wider active_hours sends each of them once, oldest first."""
    watch, state = tmp_path / "watch", tmp_path / "state"
    watch.mkdir()
    state.mkdir()
    closed_day = DAY_NAMES[(datetime.now(UTC).weekday() + 2) % 7]
    rule = {"active_hours": closed_day, "tz": "UTC"}
    one = {"max_concurrency": 1}  # one POST at a time: the simulator sees the order
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=watch, state_dir=state, rule=rule, hub=one
    )
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
    daemon.wait_ready()
    daemon.wait_for("schedule.closed", rule="main")
    make_drop(watch, "first")
    daemon.wait_for("drop.ready", drop="first")
    make_drop(watch, "second")
    daemon.wait_for("drop.ready", drop="second")
    assert main(["status", "--json", "-c", str(config)]) == 0
    drops = json.loads(capsys.readouterr().out)["drops"]
    assert {d["state"] for d in drops} == {"ready"}
    notes = {d["waiting_for_schedule"]["note"] for d in drops}
    assert notes == {f"waiting for its schedule (opens {closed_day} 00:00 UTC)"}
    assert sim.runs == []

    write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=watch,
        state_dir=state,
        rule={"active_hours": "daily", "tz": "UTC"},
        hub=one,
    )
    daemon.wait_for("config.reloaded")
    wait_runs(sim, {input_dir("first"), input_dir("second")})
    assert [r["input_dir"] for r in sim.runs] == [input_dir("first"), input_dir("second")]
    assert daemon.stop() == 0
    assert daemon.find("schedule.opened", rule="main")
