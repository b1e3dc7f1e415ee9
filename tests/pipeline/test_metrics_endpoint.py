"""The daemon's metrics endpoint on a real pipeline: /healthz reasons and the scrape snapshot,
read from another thread while the loop runs (as the HTTP thread does)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.conftest import http_get
from tests.pipeline.conftest import Rig, run, running, until
from watcher.app import metrics as app_metrics
from watcher.app.metrics import MetricsEndpoint
from watcher.config import parse_config
from watcher.metrics.snapshot import Health
from watcher.pipeline import Pipeline, submit, track

FAST_BEAT_S = 0.05


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (submit, track):
        monkeypatch.setattr(module, "BEAT_S", FAST_BEAT_S)
    monkeypatch.setattr(app_metrics, "STALE_LOOP_S", 6 * FAST_BEAT_S)
    monkeypatch.setattr(app_metrics, "LOOP_ANSWER_S", 0.3)


def _config(rig: Rig):
    data = yaml.safe_load(rig.config_text())
    data["metrics"] = {"listen": "127.0.0.1:0"}
    return parse_config(
        yaml.safe_dump(data), path=rig.tmp / "c.yaml", env={"AIHUB_TEST_TOKEN": rig.token}
    )


@contextlib.contextmanager
def serving(rig: Rig, p: Pipeline) -> Iterator[tuple[MetricsEndpoint, str]]:
    """The endpoint of `p` listening on a free loopback port, and its base URL."""
    endpoint = MetricsEndpoint(asyncio.get_running_loop())
    endpoint.start(_config(rig), p)
    assert endpoint._server is not None
    try:
        yield endpoint, f"http://127.0.0.1:{endpoint._server.port}"
    finally:
        endpoint.stop()


def test_health_names_a_pause_and_a_stuck_loop(rig: Rig):
    """200 ok while the loops beat; 503 naming the auth error while paused; 503 naming the
    loop that stopped beating."""
    rig.pipeline_kw = {"probe_s": 3600}

    async def scenario() -> None:
        p = rig.build(token="wrong-token-123")
        with serving(rig, p) as (endpoint, _base):
            async with running(p.submitter.run(), p.tracker.run()) as tasks:
                await until(lambda: set(p.state.beats) == {"submit", "track"})
                assert await asyncio.to_thread(endpoint.health) == Health(True)
                await p.on_ready(rig.make_drop("b1"))
                await until(lambda: p.paused, what="paused")
                health = await asyncio.to_thread(endpoint.health)
                assert not health.ok
                assert health.reason.startswith("hub paused on auth: POST /v2/apps/deployments/")
                assert "wrong-token-123" not in health.reason
                tasks[1].cancel()  # the tracker stops beating
                # Polled until the stale beat shows (the endpoint answers from another thread).
                deadline = time.monotonic() + 10
                while "track" not in health.reason and time.monotonic() < deadline:
                    await asyncio.sleep(FAST_BEAT_S)
                    health = await asyncio.to_thread(endpoint.health)
                assert health == Health(False, "loops not beating for 0.3s: track")

    run(scenario)


def test_a_blocked_loop_is_unhealthy_and_scrapes_still_answer(rig: Rig):
    """While the loop is blocked, /healthz says so within LOOP_ANSWER_S and /metrics still
    answers (without the ledger gauges); once free, the gauges are back."""

    async def scenario() -> None:
        p = rig.build()
        with serving(rig, p) as (endpoint, base):
            await p.on_ready(rig.make_drop("b1"))
            p.intake.flush()
            loop = asyncio.get_running_loop()
            health = loop.run_in_executor(None, endpoint.health)
            scrape = loop.run_in_executor(None, http_get, base + "/metrics")
            time.sleep(0.8)  # the loop is blocked: nothing above can be answered on it
            assert await health == Health(False, "the event loop did not answer within 0.3s")
            status, text = await scrape
            assert status == 200 and "# TYPE aihub_watcher_submissions_total counter" in text
            assert "aihub_watcher_drops{" not in text and "aihub_watcher_hub_paused 0" not in text
            status, text = await asyncio.to_thread(http_get, base + "/metrics")
            assert 'aihub_watcher_drops{rule="main",state="ready"} 1.0' in text
            assert 'aihub_watcher_queue_depth{rule="main"} 1.0' in text

    run(scenario)


def test_a_rule_outside_its_active_hours_scrapes_as_closed(rig: Rig):
    """schedule_open follows the pipeline's clock: 0 for a rule outside its active_hours (the
    oldest-ready alert leaves its waiting drops alone), 1 for an always-open rule."""
    from datetime import UTC, datetime

    sunday_noon = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()
    rig.rule = {"active_hours": "Mon-Fri 07:00-19:00", "tz": "Europe/Paris"}
    rig.extra_rules = {"other": {"active_hours": None, "tz": None}}
    offset = sunday_noon - time.time()
    rig.pipeline_kw = {"clock": lambda: time.time() + offset}

    async def scenario() -> None:
        p = rig.build()
        with serving(rig, p) as (_endpoint, base):
            _status, text = await asyncio.to_thread(http_get, base + "/metrics")
            assert 'aihub_watcher_schedule_open{rule="main"} 0.0' in text
            assert 'aihub_watcher_schedule_open{rule="other"} 1.0' in text

    run(scenario)


def test_drop_counts_are_read_off_the_loop_from_their_own_connection(rig: Rig, monkeypatch):
    """Counting every row of a large ledger takes a while (0.2 s at 300,000 rows): a scrape
    reads the counts on its own thread, from a read-only connection to the file, so the loop
    goes on submitting meanwhile; the counts are the committed ones."""
    counted_on: list[tuple[int, bool]] = []
    real = app_metrics.state_counts

    def spy(ledger, now):
        counted_on.append((threading.get_ident(), ledger.readonly))
        return real(ledger, now)

    monkeypatch.setattr(app_metrics, "state_counts", spy)

    async def scenario() -> None:
        p = rig.build()
        with serving(rig, p) as (_endpoint, base):
            for name in ("b1", "b2"):
                await p.on_ready(rig.make_drop(name))
            p.intake.flush()
            _status, text = await asyncio.to_thread(http_get, base + "/metrics")
            assert 'aihub_watcher_drops{rule="main",state="ready"} 2.0' in text
        assert counted_on and all(
            ident != threading.get_ident() and readonly for ident, readonly in counted_on
        )

    run(scenario)
