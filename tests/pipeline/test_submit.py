"""Submit: each due drop becomes one POST; failures are handled as the policy says."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from structlog.testing import capture_logs

from tests.pipeline.conftest import Rig, run, running, until
from watcher.config import parse_config
from watcher.hub.client import HubClient
from watcher.hub.policy import OUTAGE_AFTER
from watcher.model import DropState
from watcher.pipeline import fsops


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
        await p.on_ready(rig.make_drop("b1", marker=marker))
        await asyncio.sleep(0)
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


def test_a_502_from_a_gateway_after_the_run_was_created_is_adopted_not_reposted(rig: Rig):
    """A 5xx proves nothing: the run is looked up by tag and adopted; no second POST."""
    rig.hub = {"timeout_seconds": 0.5}

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.gateway_error_rate = 1.0
        await _ready(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: _submitted(rig, "b1"), what="b1 adopted")
        assert len(rig.sim.runs) == 1 and len(rig.posts()) == 1
        assert rig.drop("b1").run_id == rig.sim.runs[0]["id"]
        events = [e["event"] for e in logs]
        assert events.index("submit.ambiguous") < events.index("run.adopted")
        assert next(e for e in logs if e["event"] == "submit.ambiguous")["http_status"] == 502

    run(scenario)


def test_a_5xx_that_created_nothing_is_reposted_only_after_the_listing(rig: Rig):
    """503 and no run listed: the drop is re-armed (attempt counted, error kept), then runs."""
    rig.hub = {"timeout_seconds": 0.5}

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.fail_rate = 1.0
        await _ready(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: any(e["event"] == "reconcile.not_found" for e in logs))
                d = rig.drop("b1")
                assert d.state is DropState.READY and "HTTP 503" in (d.last_error or "")
                rig.sim.options.fail_rate = 0.0
                await until(lambda: _submitted(rig, "b1"), what="b1 submitted")
        assert rig.drop("b1").attempts == 2 and len(rig.posts()) == 2
        listings = [r for r in rig.sim.requests if r.method == "GET"]
        assert listings and listings[0].time < rig.posts()[1].time

    run(scenario)


def test_a_refused_connection_is_retried_without_a_listing(tmp_path, rig: Rig):
    """Nothing reached the server: plain retry with back-off, no reconcile."""
    closed = HubClient(base_url="http://127.0.0.1:9/api", token="t", connect_timeout_s=1)

    async def scenario() -> None:
        p = rig.build(client=closed)
        await _ready(rig, "b1")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: any(e["event"] == "submit.retry" for e in logs))
        assert not [e for e in logs if e["event"] == "submit.ambiguous"]
        d = rig.drop("b1")
        assert d.state is DropState.READY and d.attempts == 1

    run(scenario)


def test_an_outage_holds_everything_without_failing_drops(rig: Rig):
    """OUTAGE_AFTER 5xx in a row: hub.unavailable; drops wait without using up attempts."""
    rig.rule = {"max_attempts": 2}
    rig.hub = {"timeout_seconds": 0.3}

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.fail_rate = 1.0
        names = [f"b{i}" for i in range(OUTAGE_AFTER + 1)]
        await _ready(rig, *names)
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: any(e["event"] == "hub.unavailable" for e in logs))
                assert p.gate.hold_left_s() > 0
                # The hub recovers during the hold: the held drops are listed for (no run),
                # put back without using an attempt, and posted once the hold ends.
                rig.sim.options.fail_rate = 0.0
                await until(lambda: _submitted(rig, *names), timeout=30, what="all submitted")
        outage = next(e for e in logs if e["event"] == "hub.unavailable")
        assert outage["failures_in_row"] == OUTAGE_AFTER
        assert not [e for e in logs if e["event"] == "submit.gave_up"]
        assert len(rig.sim.runs) == len(names)

    run(scenario, timeout=60)


def test_retries_exhausted_fail_the_drop(rig: Rig):
    """At max_attempts the drop is `failed` with the last error, and submit.gave_up is logged."""
    rig.rule = {"max_attempts": 1}
    rig.hub = {"timeout_seconds": 0.3}

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


def test_a_paused_hub_resumes_when_a_trial_post_succeeds_after_the_probe(rig: Rig):
    """While paused, a cheap probe runs every probe_s; when it passes, one trial POST goes out,
    and only its success resumes the hub."""
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
                await until(lambda: not p.paused, what="resumed")
        trial = next(e for e in logs if e["event"] == "hub.trial")
        assert trial["reason"] == "probe succeeded"
        (resumed,) = [e for e in logs if e["event"] == "hub.resumed"]
        assert resumed["reason"] == "a submission succeeded"

    run(scenario)


def test_a_token_that_may_list_but_not_run_does_not_make_the_pause_flap(rig: Rig):
    """403 on POST, 200 on the probe's listing: one hub.paused, never hub.resumed, one trial
    POST at a time; when the token may run again, the hub resumes once."""
    rig.pipeline_kw = {"probe_s": 0.1}
    names = ["b1", "b2", "b3"]

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.forbid_runs = True
        await _ready(rig, *names)
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(
                    lambda: sum(e["event"] == "hub.trial_failed" for e in logs) >= 3,
                    what="three failed trials",
                )
                assert p.paused
                assert not [e for e in logs if e["event"] == "hub.resumed"]
                forbidden = len(rig.posts())
                rig.sim.options.forbid_runs = False
                await until(lambda: _submitted(rig, *names), what="all submitted")
        events = [e["event"] for e in logs]
        assert events.count("hub.paused") == 1 and events.count("hub.resumed") == 1
        # The first burst may hit the 403 together; after that, one trial POST per probe.
        trials = events.count("hub.trial_failed")
        assert forbidden <= len(names) + trials
        assert all(rig.drop(n).attempts == 1 for n in names)

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


def test_drops_of_a_rule_removed_by_a_reload_fail_with_a_hint(rig: Rig):
    """A ready drop whose rule a reload removed is `failed`, saying how to bring it back (as
    after a restart without the rule)."""

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "b1")
        other = rig.tmp / "other"
        other.mkdir()
        text = rig.config_text().replace("name: main", "name: other")
        text = text.replace(str(rig.watch), str(other))
        p.update_config(parse_config(text, path=rig.tmp / "c.yaml", env={"AIHUB_TEST_TOKEN": "t"}))
        async with running(p.submitter.run()):
            await until(lambda: rig.drop("b1").state is DropState.FAILED)
        assert "aihub-watcher retry" in (rig.drop("b1").last_error or "")
        assert rig.posts() == []

    run(scenario)


def test_a_drop_keeps_the_input_dir_it_was_detected_with(rig: Rig):
    """A reload that changes remote_dir before submission does not send another folder's path."""

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "b1")
        text = rig.config_text().replace("drops\n", "elsewhere\n")
        assert "elsewhere" in text
        p.update_config(parse_config(text, path=rig.tmp / "c.yaml", env={"AIHUB_TEST_TOKEN": "t"}))
        async with running(p.submitter.run()):
            await until(lambda: _submitted(rig, "b1"))
        assert rig.sim.runs[0]["input_dir"] == rig.input_dir("b1")

    run(scenario)


def test_an_output_dir_that_renders_dot_dot_rejects_the_drop(rig: Rig):
    """{drop:.2} renders '..' for a drop named '..x': rejected before any POST, with why."""
    rig.rule = {"output_dir": "acme/out/{drop:.2}/results"}

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "..x", "ok")
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: rig.drop("..x").state is DropState.REJECTED)
                await until(lambda: _submitted(rig, "ok"))
        assert "'..' is not a folder name" in (rig.drop("..x").last_error or "")
        assert [r["input_dir"] for r in rig.sim.runs] == [rig.input_dir("ok")]
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["drop.rejected"]

    run(scenario)


def test_a_hung_mount_never_stalls_submission(rig: Rig, monkeypatch):
    """Removing a ready marker hangs (a dead NFS mount, simulated by a blocking call): the loop
    goes on submitting, and the stuck removal is given up with a warning."""
    rig.rule = {"ready_marker": ".ready"}
    monkeypatch.setattr(fsops, "FS_TIMEOUT_S", 0.2)
    monkeypatch.setattr(fsops, "remove_marker", lambda marker: time.sleep(1.0))

    async def scenario() -> None:
        p = rig.build()
        for name in ("b1", "b2"):
            marker = rig.watch / f"{name}.ready"
            marker.write_text("")
            await p.on_ready(rig.make_drop(name, marker=marker))
        await asyncio.sleep(0)
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                started = time.monotonic()
                await until(lambda: _submitted(rig, "b1", "b2"), what="both submitted")
                assert time.monotonic() - started < 1.0  # not held up by the hung removal
                await until(lambda: any(e["event"] == "marker.remove_failed" for e in logs))
        warning = next(e for e in logs if e["event"] == "marker.remove_failed")
        assert warning["error"] == "timed out" and warning["log_level"] == "warning"

    run(scenario)


def test_a_run_recorded_with_the_next_intents_survives_their_failed_commit(rig: Rig, monkeypatch):
    """A POST result is written in the same transaction as the next batch of intents. When
    that transaction fails, the result is not lost with it: it is written on its own, the run
    is tracked, and the drop is never posted again."""
    from watcher.errors import LedgerError

    rig.hub = {"max_concurrency": 1}  # b2's intent is begun right after b1's POST returns

    async def scenario() -> None:
        p = rig.build()
        await _ready(rig, "b1", "b2")
        b2 = rig.drop("b2").id
        real_begin, real_marks = rig.ledger.begin_submit, rig.ledger.mark_submitted_many
        marks: list[list[str]] = []

        def failing_begin(drop_id, **kw):
            if drop_id == b2:
                raise LedgerError("disk I/O error")
            return real_begin(drop_id, **kw)

        def counted_marks(results, **kw):
            marks.append([r.drop_id for r in results])
            return real_marks(results, **kw)

        monkeypatch.setattr(rig.ledger, "begin_submit", failing_begin)
        monkeypatch.setattr(rig.ledger, "mark_submitted_many", counted_marks)
        loop_task = asyncio.create_task(p.submitter.run())
        try:
            await until(loop_task.done, what="the submit loop stops on the ledger error")
            with pytest.raises(LedgerError):
                loop_task.result()
            b1 = rig.drop("b1").id
            await until(lambda: rig.drop("b1").state is DropState.SUBMITTED, what="b1 recorded")
        finally:
            loop_task.cancel()
        # Written twice: inside b2's failed batch (rolled back), then on its own.
        assert marks == [[b1], [b1]]
        assert rig.drop("b1").run_id == rig.sim.runs[0]["id"]
        assert b1 in p.state.tracked
        assert rig.drop("b2").state is DropState.READY
        assert [r["input_dir"] for r in rig.sim.runs] == [rig.input_dir("b1")]

    run(scenario)
