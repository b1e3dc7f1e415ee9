"""Submit: each due drop becomes one POST; failures are handled as the policy says."""

from __future__ import annotations

import asyncio

import httpx
from structlog.testing import capture_logs

from tests.pipeline.conftest import Rig, run, running, until
from watcher.hub.client import HubClient
from watcher.hub.policy import OUTAGE_AFTER
from watcher.model import DropState


async def _ready(rig: Rig, *names: str) -> None:
    p = rig.pipeline
    assert p is not None
    for name in names:
        await p.on_ready(rig.make_drop(name))
    await asyncio.sleep(0)


def _submitted(rig: Rig, *names: str) -> bool:
    rig.pipeline.submitter.flush_submitted()
    return all(rig.drop(n).state is DropState.SUBMITTED for n in names)


def test_a_ready_drop_is_posted_once_with_its_tag_and_output_dir(rig: Rig):
    """One POST with input_dir, output_dir and our drop tag; the ledger holds the run id."""
    rig.rule = {"output_dir": "acme/out/{rule}/{drop}", "settings": {"tags": ["mine"]}}

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "b1")
        async with running(p.submitter.run()):
            await until(lambda: _submitted(rig, "b1"), what="b1 submitted")
        (run_,) = rig.sim.runs
        d = rig.drop("b1")
        assert run_["input_dir"] == rig.input_dir("b1")
        assert run_["output_dir"] == "acme/out/main/b1"
        assert run_["settings"]["tags"] == ["mine", f"aihub-watcher:drop={d.id}"]
        assert d.run_id == run_["id"] and d.attempts == 1
        assert len(rig.posts()) == 1

    run(scenario)


def test_the_ready_marker_is_removed_after_the_post(rig: Rig):
    """With ready_marker, the marker file goes once the run exists, and not before."""
    rig.rule = {"ready_marker": ".ready"}

    async def scenario() -> None:
        p = rig.build()
        marker = rig.watch / "b1.ready"
        marker.write_text("")
        await _ready(rig, "b1")
        assert marker.exists()
        async with running(p.submitter.run()):
            await until(lambda: not marker.exists(), what="marker removed")
        assert len(rig.sim.runs) == 1

    run(scenario)


def test_a_429_holds_every_submission_for_its_retry_after(rig: Rig):
    """After a 429 with Retry-After: 2, no POST goes out for 2 s; the attempt is not counted."""
    rig.sim.options.rate_limit = 0.5  # one now, then 429 with Retry-After: 2

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "b1", "b2")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: _submitted(rig, "b1", "b2"), timeout=15, what="both submitted")
        posts = rig.posts()
        first_429 = next(i for i, r in enumerate(posts) if r.status == 429)
        gap = posts[first_429 + 1].time - posts[first_429].time
        assert gap >= 1.9, f"next POST {gap:.3f}s after a 429 with Retry-After: 2"
        assert sum(r.status == 429 for r in posts) <= 2
        assert {rig.drop(n).attempts for n in ("b1", "b2")} == {1}
        throttled = [e for e in logs if e["event"] == "submit.throttled"]
        assert throttled and throttled[0]["delay_s"] == 2 and throttled[0]["http_status"] == 429

    run(scenario, timeout=30)


def test_a_5xx_is_retried_with_back_off_and_counted(rig: Rig):
    """A 503 puts the drop back with a delay and one attempt used; then it goes through."""

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.fail_rate = 1.0
        await _ready(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: any(e["event"] == "submit.retry" for e in logs))
                d = rig.drop("b1")
                assert d.state is DropState.READY and d.next_attempt_at is not None
                rig.sim.options.fail_rate = 0.0
                await until(lambda: _submitted(rig, "b1"), what="b1 submitted")
        assert rig.drop("b1").attempts == 2
        retry = next(e for e in logs if e["event"] == "submit.retry")
        assert retry["http_status"] == 503 and 0.5 <= retry["delay_s"] <= 1.0

    run(scenario)


def test_an_outage_holds_everything_without_failing_drops(rig: Rig):
    """OUTAGE_AFTER 5xx in a row: hub.unavailable, drops wait without using attempts."""
    rig.rule = {"max_attempts": 2}

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.fail_rate = 1.0
        names = [f"b{i}" for i in range(OUTAGE_AFTER)]
        await _ready(rig, *names)
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: any(e["event"] == "hub.unavailable" for e in logs))
                assert p.gate.hold_left_s() > 0
                assert not any(rig.drop(n).state is DropState.FAILED for n in names)
                rig.sim.options.fail_rate = 0.0
                await until(lambda: _submitted(rig, *names), timeout=20, what="all submitted")
        outage = next(e for e in logs if e["event"] == "hub.unavailable")
        assert outage["failures_in_row"] == OUTAGE_AFTER
        assert not [e for e in logs if e["event"] == "submit.gave_up"]

    run(scenario, timeout=40)


def test_retries_exhausted_fail_the_drop(rig: Rig):
    """At max_attempts the drop is `failed` with the last error, and submit.gave_up is logged."""
    rig.rule = {"max_attempts": 1}

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.fail_rate = 1.0
        await _ready(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: rig.drop("b1").state is DropState.FAILED)
        assert "HTTP 503" in (rig.drop("b1").last_error or "")
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["submit.gave_up"]

    run(scenario)


def test_a_bad_token_pauses_the_hub_until_a_new_client_arrives(rig: Rig):
    """401: hub.paused, nothing burned; a client with the right token resumes and submits."""
    rig.pipeline_kw = {"probe_s": 3600}

    async def scenario() -> None:
        p = rig.build(token="wrong-token-123")
        await _ready(rig, "b1", "b2")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: p.paused, what="paused")
                await until(lambda: all(rig.drop(n).state is DropState.READY for n in ("b1", "b2")))
                assert all(rig.drop(n).attempts == 0 for n in ("b1", "b2"))
                p.replace_client(rig.client())
                await until(lambda: _submitted(rig, "b1", "b2"), what="submitted after resume")
        events = [e["event"] for e in logs]
        assert events.count("hub.paused") == 1 and "hub.resumed" in events
        assert next(e for e in logs if e["event"] == "hub.paused")["http_status"] == 401

    run(scenario)


def test_a_paused_hub_resumes_when_the_probe_succeeds(rig: Rig):
    """While paused, a cheap probe runs every probe_s; when it passes, submissions resume."""
    rig.pipeline_kw = {"probe_s": 0.2}

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.token = "rotated-on-the-server"
        await _ready(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: p.paused, what="paused")
                rig.sim.options.token = rig.token
                await until(lambda: _submitted(rig, "b1"), what="submitted after the probe")
        resumed = [e for e in logs if e["event"] == "hub.resumed"]
        assert resumed and resumed[0]["reason"] == "probe succeeded"

    run(scenario)


def test_a_rejected_request_rejects_the_drop(rig: Rig):
    """A 4xx other than 401/403/429 rejects the drop with the hub's message; no retry."""

    def unprocessable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"message": "input_dir is not a folder"})

    client = HubClient(
        base_url=rig.sim.url, token="t", transport=httpx.MockTransport(unprocessable)
    )

    async def scenario() -> None:
        p = rig.build(client=client)
        await _ready(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: rig.drop("b1").state is DropState.REJECTED)
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["run.rejected"]
        rejected = next(e for e in logs if e["event"] == "run.rejected")
        assert rejected["http_status"] == 422 and rejected["msg"] == "input_dir is not a folder"
        assert "input_dir is not a folder" in (rig.drop("b1").last_error or "")

    run(scenario)


def test_drops_of_a_removed_rule_fail_with_a_hint(rig: Rig):
    """A ready drop whose rule vanished is `failed`, saying how to bring it back."""

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "b1")
        del p.state.rules["main"]
        async with running(p.submitter.run()):
            await until(lambda: rig.drop("b1").state is DropState.FAILED)
        assert "aihub-watcher retry" in (rig.drop("b1").last_error or "")
        assert rig.posts() == []

    run(scenario)
