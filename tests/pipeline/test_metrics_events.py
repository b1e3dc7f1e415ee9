"""The pipeline reports to its metrics: each POST's outcome and latency, each run's end, each
uploaded byte (a real ledger, the simulator, and the Prometheus recorder)."""

from __future__ import annotations

import asyncio

import httpx

from tests.pipeline.conftest import Rig, run, running, until
from watcher.hub.client import HubClient
from watcher.metrics.recorder import PrometheusMetrics
from watcher.model import DropState


def value(m: PrometheusMetrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


async def _ready(rig: Rig, *names: str, files: dict[str, bytes] | None = None) -> None:
    assert rig.pipeline is not None
    for name in names:
        await rig.pipeline.on_ready(rig.make_drop(name, files))
    await asyncio.sleep(0)


def test_accepted_posts_and_failed_runs_are_counted(rig: Rig):
    """Two drops: 2 accepted POSTs timed, 2 waits observed, 2 runs finished FAILED."""
    rig.sim.options.run_seconds = 0.1
    rig.sim.options.fail_runs = 1.0
    metrics = PrometheusMetrics()
    rig.pipeline_kw = {"track_min_s": 0.05, "track_max_s": 0.2, "metrics": metrics}

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "b1", "b2")
        async with running(p.submitter.run(), p.tracker.run()):
            await until(
                lambda: all(rig.drop(n).state is DropState.RUN_FAILED for n in ("b1", "b2"))
            )
        submissions = "aihub_watcher_submissions_total"
        assert value(metrics, submissions, rule="main", outcome="accepted") == 2
        assert value(metrics, "aihub_watcher_submit_latency_seconds_count") == 2
        assert value(metrics, "aihub_watcher_drop_to_run_seconds_count") == 2
        finished = "aihub_watcher_runs_finished_total"
        assert value(metrics, finished, rule="main", status="FAILED") == 2
        assert value(metrics, finished, rule="main", status="COMPLETE") == 0
        assert value(metrics, "aihub_watcher_last_submission_timestamp_seconds") > 0

    run(scenario)


def test_a_rejected_post_counts_as_rejected_not_as_a_submission(rig: Rig):
    """A 422: outcome rejected, its latency observed, and no last-success time."""
    metrics = PrometheusMetrics()
    rig.pipeline_kw = {"metrics": metrics}

    def unprocessable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"message": "input_dir is not a folder"})

    client = HubClient(
        base_url=rig.sim.url, token="t", transport=httpx.MockTransport(unprocessable)
    )

    async def scenario() -> None:
        p = rig.build(client=client)
        await _ready(rig, "b1")
        async with running(p.submitter.run()):
            await until(lambda: rig.drop("b1").state is DropState.REJECTED)
        submissions = "aihub_watcher_submissions_total"
        assert value(metrics, submissions, rule="main", outcome="rejected") == 1
        assert value(metrics, submissions, rule="main", outcome="accepted") == 0
        assert value(metrics, "aihub_watcher_submit_latency_seconds_count") == 1
        assert value(metrics, "aihub_watcher_drop_to_run_seconds_count") == 0
        assert value(metrics, "aihub_watcher_last_submission_timestamp_seconds") == 0

    run(scenario)


def test_uploaded_bytes_are_counted_per_rule(rig: Rig):
    """source: upload: every byte of the drop's files counts once, under its rule."""
    metrics = PrometheusMetrics()
    rig.rule = {"source": "upload", "remote_dir": None}
    rig.pipeline_kw = {"metrics": metrics}
    files = {"a.pdf": b"x" * 1000, "sub/b.pdf": b"y" * 234}

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "u1", files=files)
        async with running(p.uploader.run()):
            await until(lambda: rig.drop("u1").state is DropState.READY, what="u1 uploaded")
        assert value(metrics, "aihub_watcher_uploaded_bytes_total", rule="main") == 1234

    run(scenario)
