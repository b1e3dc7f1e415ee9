"""The metrics adapter: events counted with their labels, scrape-time gauges from a snapshot,
and the HTTP listener's /metrics, /healthz and 404, on a real loopback socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from watcher.metrics import OUTCOMES
from watcher.metrics.recorder import PrometheusMetrics
from watcher.metrics.series import SERIES
from watcher.metrics.server import MetricsServer
from watcher.metrics.snapshot import Health, Snapshot
from watcher.model import DropState, StateCount

NOW = 1_700_000_000.0
STATES = tuple(s.value for s in DropState)


def sample(m: PrometheusMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_each_outcome_counts_under_its_rule_and_times_the_post() -> None:
    """submitted() counts per (rule, outcome), observes the latency, and only an accepted POST
    sets the last-submission time."""
    m = PrometheusMetrics()
    m.submitted("a", "rejected", 0.2)
    assert sample(m, "aihub_watcher_last_submission_timestamp_seconds") == 0
    before = time.time()
    for outcome in OUTCOMES:
        m.submitted("a", outcome, 0.05)
    m.submitted("b", "accepted", 3.0)
    assert sample(m, "aihub_watcher_submissions_total", rule="a", outcome="accepted") == 1
    assert sample(m, "aihub_watcher_submissions_total", rule="a", outcome="rejected") == 2
    assert sample(m, "aihub_watcher_submissions_total", rule="b", outcome="accepted") == 1
    assert sample(m, "aihub_watcher_submissions_total", rule="b", outcome="rejected") is None
    count = len(OUTCOMES) + 2
    assert sample(m, "aihub_watcher_submit_latency_seconds_count") == count
    assert sample(m, "aihub_watcher_submit_latency_seconds_sum") == pytest.approx(
        0.2 + 0.05 * len(OUTCOMES) + 3.0
    )
    assert sample(m, "aihub_watcher_submit_latency_seconds_bucket", le="0.05") == len(OUTCOMES)
    last = sample(m, "aihub_watcher_last_submission_timestamp_seconds")
    assert last is not None and before <= last <= time.time()


def test_runs_waits_and_bytes_are_counted() -> None:
    """run_started observes the wait, run_finished counts by status, uploaded adds bytes."""
    m = PrometheusMetrics()
    m.run_started("a", 12.0)
    m.run_started("a", -1.0)  # a clock step back never makes a negative wait
    m.run_finished("a", "COMPLETE")
    m.run_finished("a", "FAILED")
    m.run_finished("a", "FAILED")
    m.uploaded("a", 1000)
    m.uploaded("a", 24)
    assert sample(m, "aihub_watcher_drop_to_run_seconds_count") == 2
    assert sample(m, "aihub_watcher_drop_to_run_seconds_sum") == 12.0
    assert sample(m, "aihub_watcher_drop_to_run_seconds_bucket", le="0.1") == 1
    assert sample(m, "aihub_watcher_runs_finished_total", rule="a", status="FAILED") == 2
    assert sample(m, "aihub_watcher_runs_finished_total", rule="a", status="COMPLETE") == 1
    assert sample(m, "aihub_watcher_uploaded_bytes_total", rule="a") == 1024


def test_labelled_children_are_created_once() -> None:
    """The hot path looks children up in a dict: the same child object every call."""
    m = PrometheusMetrics()
    first = m._submissions.get("a", "accepted")
    assert m._submissions.get("a", "accepted") is first
    assert m._submissions.get("a", "retried") is not first


def _snapshot() -> Snapshot:
    return Snapshot(
        now=NOW,
        counts=(
            StateCount(rule="a", state="ready", drops=3, due=2, oldest_at=NOW - 90),
            StateCount(rule="a", state="complete", drops=7, due=0, oldest_at=NOW - 500),
            StateCount(rule="gone", state="failed", drops=1, due=0, oldest_at=NOW - 9),
        ),
        rules=("a", "b"),
        states=STATES,
        paused=True,
        closed=frozenset({"b"}),
        beat_ages={"submit": 0.5, "track": 1.25},
    )


def test_scrape_time_gauges_come_from_the_snapshot() -> None:
    """Every configured rule gets every state (0 when empty); a removed rule's rows still show;
    queue depth and oldest age come from the ready group."""
    m = PrometheusMetrics()
    m.add_scrape(_snapshot)
    assert sample(m, "aihub_watcher_drops", rule="a", state="ready") == 3
    assert sample(m, "aihub_watcher_drops", rule="a", state="complete") == 7
    assert sample(m, "aihub_watcher_drops", rule="b", state="ready") == 0
    assert sample(m, "aihub_watcher_drops", rule="gone", state="failed") == 1
    assert sample(m, "aihub_watcher_queue_depth", rule="a") == 2
    assert sample(m, "aihub_watcher_queue_depth", rule="b") == 0
    assert sample(m, "aihub_watcher_oldest_ready_age_seconds", rule="a") == 90
    assert sample(m, "aihub_watcher_oldest_ready_age_seconds", rule="b") == 0
    assert sample(m, "aihub_watcher_hub_paused") == 1
    assert sample(m, "aihub_watcher_loop_beat_age_seconds", loop="track") == 1.25
    # b is outside its active_hours: its ready drops wait, and the alerts know it.
    assert sample(m, "aihub_watcher_schedule_open", rule="a") == 1
    assert sample(m, "aihub_watcher_schedule_open", rule="b") == 0


def test_no_snapshot_means_no_scrape_time_samples() -> None:
    """A loop that does not answer: the event series still scrape, the snapshot ones are empty."""
    m = PrometheusMetrics()
    m.add_scrape(lambda: None)
    m.submitted("a", "accepted", 0.1)
    assert sample(m, "aihub_watcher_hub_paused") is None
    assert sample(m, "aihub_watcher_submissions_total", rule="a", outcome="accepted") == 1


def test_the_registry_exports_exactly_the_series_table() -> None:
    """Names and types in the registry are the table's (the README and contrib/ use these)."""
    m = PrometheusMetrics()
    m.add_scrape(_snapshot)
    exported = {f.name: f.type for f in m.registry.collect()}
    assert exported == {s.name: s.kind for s in SERIES}
    assert all(s.name.startswith("aihub_watcher_") for s in SERIES)


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_the_server_serves_metrics_health_and_404() -> None:
    """/metrics parses with prometheus_client's parser; /healthz is 200 ok or 503 + one line."""
    m = PrometheusMetrics()
    m.add_scrape(_snapshot)
    m.submitted("a", "accepted", 0.1)
    health = [Health(True)]
    server = MetricsServer(host="127.0.0.1", port=0, registry=m.registry, health=lambda: health[0])
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, ctype, text = _get(base + "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families["aihub_watcher_submissions"].samples[0].value == 1
        assert families["aihub_watcher_hub_paused"].samples[0].value == 1
        assert _get(base + "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
        health[0] = Health(False, "hub paused on auth:\nHTTP 401")
        assert _get(base + "/healthz")[::2] == (503, "hub paused on auth: HTTP 401\n")
        assert _get(base + "/")[0] == 404
    finally:
        server.stop()
    with pytest.raises(OSError):
        _get(base + "/healthz")


def test_a_port_in_use_fails_before_serving() -> None:
    """Binding happens in the constructor: a taken port is an OSError at startup."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            MetricsServer(
                host="127.0.0.1", port=port, registry=PrometheusMetrics().registry, health=Health
            )


def test_the_daemon_loads_no_prometheus_client_until_metrics_are_on() -> None:
    """Importing the daemon, the CLI and the pipeline loads no prometheus_client: with metrics
    off the pipeline reports to the no-op."""
    code = (
        "import sys, watcher.pipeline, watcher.app.daemon, watcher.cli.main;"
        " print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
