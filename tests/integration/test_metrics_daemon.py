"""The real daemon with metrics on: /metrics scraped over HTTP and parsed with
prometheus_client's own parser, and /healthz while the hub is paused on a bad token."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http_get as get
from tests.conftest import wait_until
from tests.daemon_helpers import DaemonProcess, input_dir, make_drop, wait_runs, write_config

METRICS_ON = {"metrics": {"listen": "127.0.0.1:0"}}


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (sample name, sorted labels) -> value."""
    status, text = get(base + "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def start(config: Path, env: dict[str, str] | None = None) -> tuple[DaemonProcess, str]:
    daemon = DaemonProcess(config, env=env)
    daemon.wait_ready()
    port = daemon.wait_for("metrics.listening")[0]["port"]
    return daemon, f"http://127.0.0.1:{port}"


def test_metrics_count_what_the_daemon_did(sim, dirs, tmp_path, token):
    """Three drops: 3 accepted POSTs, 3 COMPLETE runs, latency and wait histograms of 3, the
    drops gauge shows them complete, and the last-success time is set."""
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        top=METRICS_ON,
    )
    started = time.time()
    daemon, base = start(config, {"AIHUB_TEST_TOKEN": token})
    assert get(base + "/healthz") == (200, "ok\n")
    names = ["m-1", "m-2", "m-3"]
    for name in names:
        make_drop(dirs["watch"], name)
    wait_runs(sim, {input_dir(n) for n in names})

    def finished() -> dict[Any, float] | None:
        samples = scrape(base)
        done = value(samples, "aihub_watcher_runs_finished_total", rule="main", status="COMPLETE")
        return samples if done == 3 else None

    samples = wait_until(finished, timeout=30, what="3 runs finished in /metrics")
    accepted = value(samples, "aihub_watcher_submissions_total", rule="main", outcome="accepted")
    assert accepted == 3
    assert value(samples, "aihub_watcher_submit_latency_seconds_count") == 3
    assert value(samples, "aihub_watcher_drop_to_run_seconds_count") == 3
    assert value(samples, "aihub_watcher_drops", rule="main", state="complete") == 3
    assert value(samples, "aihub_watcher_drops", rule="main", state="ready") == 0
    assert value(samples, "aihub_watcher_queue_depth", rule="main") == 0
    assert value(samples, "aihub_watcher_oldest_ready_age_seconds", rule="main") == 0
    assert value(samples, "aihub_watcher_hub_paused") == 0
    last = value(samples, "aihub_watcher_last_submission_timestamp_seconds")
    assert last is not None and started <= last <= time.time()
    assert value(samples, "aihub_watcher_loop_beat_age_seconds", loop="submit") is not None
    assert get(base + "/healthz") == (200, "ok\n")
    assert get(base + "/nothing-here")[0] == 404
    assert daemon.stop() == 0
    assert token not in daemon.output()


def test_healthz_is_503_while_paused_on_auth_then_200(sim, dirs, tmp_path, token):
    """A wrong token: /healthz answers 503 with the reason and hub_paused is 1; a fixed token
    and SIGHUP bring 200 back, and the drop runs."""
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token-value\n")
    config = write_config(
        tmp_path / "c.yaml",
        hub_url=sim.url,
        watch=dirs["watch"],
        state_dir=dirs["state"],
        token_file=token_file,
        top=METRICS_ON,
    )
    daemon, base = start(config)
    make_drop(dirs["watch"], "p-1")
    daemon.wait_for("hub.paused")
    status, body = get(base + "/healthz")
    assert status == 503
    assert body.startswith("hub paused on auth: ") and "401" in body
    assert body.count("\n") == 1, body
    samples = scrape(base)
    assert value(samples, "aihub_watcher_hub_paused") == 1
    unauthorized = value(
        samples, "aihub_watcher_submissions_total", rule="main", outcome="unauthorized"
    )
    assert unauthorized == 1
    assert value(samples, "aihub_watcher_drops", rule="main", state="ready") == 1
    assert value(samples, "aihub_watcher_queue_depth", rule="main") == 1
    age = value(samples, "aihub_watcher_oldest_ready_age_seconds", rule="main")
    assert age is not None and age > 0

    token_file.write_text(token + "\n")
    daemon.signal(signal.SIGHUP)
    wait_runs(sim, {input_dir("p-1")})
    wait_until(lambda: get(base + "/healthz") == (200, "ok\n"), timeout=20, what="healthz 200")
    assert value(scrape(base), "aihub_watcher_hub_paused") == 0
    assert daemon.stop() == 0
    assert "wrong-token-value" not in body and token not in body


def test_a_metrics_port_in_use_stops_the_start_with_one_error(sim, dirs, tmp_path, token):
    """The listen address is taken: exit 2 (fix the setup) with metrics.listen_failed."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path / "c.yaml",
            hub_url=sim.url,
            watch=dirs["watch"],
            state_dir=dirs["state"],
            top={"metrics": {"listen": f"127.0.0.1:{port}"}},
        )
        daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": token})
        assert daemon.wait(timeout=30) == 2
    (failed,) = daemon.find("metrics.listen_failed")
    assert failed["level"] == "error" and failed["listen"] == f"127.0.0.1:{port}"
    assert not daemon.find("daemon.ready")


def test_a_reload_keeps_the_listener_and_says_a_restart_is_needed(sim, dirs, tmp_path, token):
    """A new metrics.listen on SIGHUP: config.restart_needed names it; the old one serves on."""
    args = {"hub_url": sim.url, "watch": dirs["watch"], "state_dir": dirs["state"]}
    config = write_config(tmp_path / "c.yaml", **args, top=METRICS_ON)
    daemon, base = start(config, {"AIHUB_TEST_TOKEN": token})
    write_config(tmp_path / "c.yaml", **args, top={"metrics": {"listen": "127.0.0.1:1"}})
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_for("config.restart_needed", key="metrics")[0]
    assert line["using"] == "127.0.0.1:0" and line["level"] == "warning"
    daemon.wait_for("config.reloaded")
    assert get(base + "/healthz") == (200, "ok\n")
    assert daemon.stop() == 0
