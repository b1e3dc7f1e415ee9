"""The real daemon process against the simulator on loopback: exactly one run per drop, always."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.conftest import wait_until
from tests.daemon_helpers import (
    DaemonProcess,
    input_dir,
    ledger_states,
    make_drop,
    run_cli,
    runs_by_input_dir,
    wait_all_complete,
    wait_runs,
    write_config,
)
from tests.daemon_helpers import (
    start_daemon as start,
)


def assert_exactly_once(sim, names: list[str]) -> None:
    counts = runs_by_input_dir(sim)
    expected = {input_dir(n) for n in names}
    missing = expected - counts.keys()
    dupes = {k: v for k, v in counts.items() if v > 1}
    assert not missing, f"{len(missing)} drops never ran"
    assert not dupes, f"duplicate runs: {dupes}"
    assert len(sim.runs) == len(names)


def test_burst_of_300_drops_gives_exactly_300_runs(sim, dirs, tmp_path, token):
    """300 drops renamed in at once become 300 runs, one each, all logged."""
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=dirs["watch"], state_dir=dirs["state"]
    )
    daemon = start(config, token)
    names = [f"batch-{i:03d}" for i in range(300)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_runs(sim, {input_dir(n) for n in names})
    daemon.wait_for("run.submitted", count=300)
    assert daemon.stop() == 0
    assert_exactly_once(sim, names)
    event = daemon.find("run.submitted", drop="batch-000")[0]
    assert event["rule"] == "main" and event["input_dir"] == input_dir("batch-000")
    assert event["http_status"] == 202 and event["run_id"] == event["response"]["id"]
    assert event["level"] == "info" and "timestamp" in event
    assert token not in daemon.output()


def test_kill_9_mid_burst_then_restart_runs_each_drop_once(sim, dirs, tmp_path, token):
    """kill -9 in the middle of a 200-drop burst, then a restart: no duplicate, no miss."""
    sim.options.latency_ms = 5
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=dirs["watch"], state_dir=dirs["state"]
    )
    daemon = start(config, token)
    names = [f"k-{i:03d}" for i in range(200)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_until(lambda: len(sim.runs) >= 60, timeout=30, what="some runs before the kill")
    daemon.kill()
    assert len(sim.runs) < 200, "the kill came too late to test anything"
    daemon = start(config, token)
    wait_runs(sim, {input_dir(n) for n in names})
    daemon.wait_for("run.submitted", count=1)
    # A sentinel drop made after the restart: once it has run, any re-post would have happened.
    make_drop(dirs["watch"], "sentinel")
    wait_runs(sim, {input_dir("sentinel")})
    # The ledger agrees: every run, adopted or posted, is tracked to its end.
    wait_all_complete(config, [*names, "sentinel"])
    assert daemon.stop() == 0
    assert_exactly_once(sim, [*names, "sentinel"])


def test_503s_and_429_bursts_still_give_one_run_per_drop(sim, dirs, tmp_path, token):
    """30% 503 and a rate limit: every 503 is settled by listing, and each drop ends with
    exactly one run."""
    sim.options.fail_rate = 0.3
    sim.options.rate_limit = 40
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        hub={"timeout_seconds": 1},
    )
    daemon = start(config, token)
    names = [f"f-{i:02d}" for i in range(60)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_runs(sim, {input_dir(n) for n in names}, timeout=90)
    assert daemon.stop() == 0
    assert_exactly_once(sim, names)
    statuses = {r.status for r in sim.requests if r.method == "POST"}
    assert {202, 503} <= statuses
    unknown = daemon.find("submit.ambiguous")
    assert unknown and {503} <= {e["http_status"] for e in unknown}
    assert daemon.find("reconcile.not_found")


def test_lost_responses_are_reconciled_not_reposted(sim, dirs, tmp_path, token):
    """The hub creates the run but the answer is lost: the daemon adopts it by tag."""
    sim.options.lose_response_rate = 0.4
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        hub={"timeout_seconds": 5},
    )
    daemon = start(config, token)
    names = [f"l-{i:02d}" for i in range(40)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_runs(sim, {input_dir(n) for n in names}, timeout=90)
    wait_until(
        lambda: len(daemon.find("run.submitted")) + len(daemon.find("run.adopted")) >= 40,
        timeout=60,
        what="every drop recorded",
    )
    assert daemon.find("run.adopted"), "no lost response was adopted"
    wait_all_complete(config, names)
    assert daemon.stop() == 0
    assert_exactly_once(sim, names)


def test_401_pauses_until_token_fixed_and_sighup(sim, dirs, tmp_path, token):
    """A wrong token pauses submissions (no drop burned); fixing it + SIGHUP resumes."""
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token-value\n")
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        token_file=token_file,
    )
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    names = [f"a-{i}" for i in range(5)]
    for name in names:
        make_drop(dirs["watch"], name)
    daemon.wait_for("hub.paused")
    assert sim.runs == []
    token_file.write_text(token + "\n")
    daemon.signal(signal.SIGHUP)
    wait_runs(sim, {input_dir(n) for n in names})
    assert daemon.stop() == 0
    assert_exactly_once(sim, names)
    assert not daemon.find("submit.gave_up") and not daemon.find("run.rejected")
    assert token not in daemon.output() and "wrong-token-value" not in daemon.output()


def test_restart_after_clean_run_posts_nothing_new(sim, dirs, tmp_path, token):
    """After a clean stop, a restart re-posts none of the drops already submitted."""
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=dirs["watch"], state_dir=dirs["state"]
    )
    daemon = start(config, token)
    names = [f"r-{i:02d}" for i in range(20)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_runs(sim, {input_dir(n) for n in names})
    assert daemon.stop() == 0
    daemon = start(config, token)
    make_drop(dirs["watch"], "sentinel")
    wait_runs(sim, {input_dir("sentinel")})
    assert daemon.stop() == 0
    assert_exactly_once(sim, [*names, "sentinel"])


def test_sigterm_during_burst_exits_0_and_loses_nothing(sim, dirs, tmp_path, token):
    """SIGTERM mid-burst: exit 0 promptly; a restart finishes every remaining drop once."""
    sim.options.latency_ms = 20
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=dirs["watch"], state_dir=dirs["state"]
    )
    daemon = start(config, token)
    names = [f"t-{i:03d}" for i in range(150)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_until(lambda: len(sim.runs) >= 20, timeout=30, what="some runs before SIGTERM")
    assert daemon.stop(timeout=15) == 0
    assert daemon.find("daemon.stopped")
    sim.options.latency_ms = 0
    daemon = start(config, token)
    wait_runs(sim, {input_dir(n) for n in names})
    assert daemon.stop() == 0
    assert_exactly_once(sim, names)


def test_post_run_actions_wait_for_terminal_status(sim, dirs, tmp_path, token):
    """on_complete moves a drop only after COMPLETE; on_failure moves failed ones elsewhere."""
    sim.options.run_seconds = 1.5
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        rule={"on_complete": f"move:{dirs['done']}", "on_failure": f"move:{dirs['failed']}"},
    )
    daemon = start(config, token)
    make_drop(dirs["watch"], "good")
    daemon.wait_for("run.submitted", drop="good")
    # The run is RUNNING and still reads the files: they must stay where they are.
    assert sim.runs[0]["status"] == "RUNNING"
    assert (dirs["watch"] / "good").exists()
    wait_until((dirs["done"] / "good" / "page-0.pdf").exists, timeout=20)
    daemon.wait_for("post_action.done", drop="good")
    names = [e["event"] for e in daemon.events if e.get("drop") == "good"]
    assert names.index("post_action.done") > names.index("run.status")
    assert daemon.find("run.status", drop="good", status="COMPLETE")
    sim.options.fail_runs = 1.0
    make_drop(dirs["watch"], "bad")
    wait_until((dirs["failed"] / "bad").exists, timeout=20)
    assert not (dirs["done"] / "bad").exists()
    assert daemon.stop() == 0


def _cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "-c", str(config))


def test_status_and_retry_commands(sim, dirs, tmp_path, token):
    """A drop that exhausts its retries shows as failed in `status`; `retry` re-arms it."""
    sim.options.fail_rate = 1.0
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        rule={"max_attempts": 2},
        hub={"timeout_seconds": 0.5},
    )
    daemon = start(config, token)
    make_drop(dirs["watch"], "one")
    daemon.wait_for("submit.gave_up", drop="one")
    status = _cli("status", "--json", config=config)
    assert status.returncode == 0, status.stderr
    (drop,) = json.loads(status.stdout)["drops"]
    assert drop["drop"] == "one" and drop["state"] == "failed" and drop["attempts"] == 2
    assert "503" in drop["last_error"]
    text = _cli("status", config=config)
    assert drop["id"] in text.stdout and "1 drop: failed 1" in text.stdout
    sim.options.fail_rate = 0.0
    retry = _cli("retry", drop["id"], config=config)
    assert retry.returncode == 0, retry.stderr
    wait_runs(sim, {input_dir("one")}, timeout=30)
    daemon.wait_for("run.submitted", drop="one")
    assert _cli("retry", "d-000000000000", config=config).returncode == 1
    assert daemon.stop() == 0
    assert_exactly_once(sim, ["one"])


def test_sustained_429_holds_back_without_burning_attempts(sim, dirs, tmp_path, token):
    """A hub allowing 5 submissions/s: every drop still runs once and none ends failed."""
    sim.options.rate_limit = 5
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        rule={"max_attempts": 2},
    )
    daemon = start(config, token)
    names = [f"q-{i:02d}" for i in range(25)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_runs(sim, {input_dir(n) for n in names}, timeout=60)
    assert daemon.find("submit.throttled")
    assert not daemon.find("submit.gave_up")
    assert daemon.stop() == 0
    assert_exactly_once(sim, names)


def test_reload_changing_concurrency_mid_burst_keeps_submitting(sim, dirs, tmp_path, token):
    """max_concurrency changed by SIGHUP during a burst: no stall, every drop runs once."""
    sim.options.latency_ms = 20
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        hub={"max_concurrency": 2},
    )
    daemon = start(config, token)
    names = [f"m-{i:02d}" for i in range(60)]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_until(lambda: len(sim.runs) >= 5, timeout=30, what="some runs")
    write_config(
        config,
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        hub={"max_concurrency": 3},
    )
    daemon.signal(signal.SIGHUP)
    wait_runs(sim, {input_dir(n) for n in names}, timeout=60)
    assert daemon.stop() == 0
    assert_exactly_once(sim, names)


def test_removed_rule_with_pending_drops_does_not_crash_on_restart(sim, dirs, tmp_path, token):
    """A rule removed while its drops wait: the daemon starts, marks them failed, says why."""
    sim.options.fail_rate = 1.0
    other = tmp_path / "other"
    other.mkdir()
    second = {
        "name": "second",
        "watch": str(other),
        "remote_dir": "acme/Other/fs/Instabase Drive/in",
        "deployment_id": "dep-2",
        "settle_seconds": 0.3,
        "verify_remote": False,
    }
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        extra_rules=[second],
    )
    daemon = start(config, token)
    make_drop(other, "orphan")
    daemon.wait_for("submit.ambiguous", drop="orphan")
    assert daemon.stop() == 0
    write_config(config, hub_url=sim.url, watch=dirs["watch"], state_dir=dirs["state"])
    sim.options.fail_rate = 0.0
    daemon = start(config, token)
    daemon.wait_for("rule.missing", rule="second")
    daemon.wait_for("submit.gave_up", drop="orphan", timeout=30)
    make_drop(dirs["watch"], "fine")
    wait_runs(sim, {input_dir("fine")})
    assert daemon.stop() == 0
    assert ledger_states(config)["orphan"] == "failed"
    assert "no longer in the config" in daemon.find("submit.gave_up", drop="orphan")[0]["error"]
    assert sim.runs and all(r["deployment_id"] != "dep-2" for r in sim.runs)


def test_reload_with_unusable_ca_bundle_keeps_the_old_config(sim, dirs, tmp_path, token):
    """A reload whose hub client cannot be built is rejected as a whole; the daemon runs on."""
    config = write_config(
        tmp_path / "c.yaml", hub_url=sim.url, watch=dirs["watch"], state_dir=dirs["state"]
    )
    daemon = start(config, token)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("this is not a certificate\n")
    write_config(
        config,
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        hub={"ca_bundle": str(bundle)},
    )
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("config.reload_failed")
    make_drop(dirs["watch"], "after")
    wait_runs(sim, {input_dir("after")})
    assert daemon.stop() == 0
    assert not daemon.find("daemon.crashed")
