"""Intake: a complete drop becomes one `ready` row; changes are applied or warned about once."""

from __future__ import annotations

import asyncio
import os

from structlog.testing import capture_logs

from tests.pipeline.conftest import Rig, run
from watcher.model import DropState, ReadyDrop


def test_a_ready_drop_is_recorded_once_with_its_input_dir(rig: Rig):
    """The same drop handed over twice gives one ledger row, `ready`, pointing at remote_dir."""

    async def scenario() -> None:
        p = rig.build()
        ready = rig.make_drop("batch-1")
        with capture_logs() as logs:
            await p.on_ready(ready)
            await p.on_ready(ready)
            await asyncio.sleep(0)  # the flush runs on the next loop turn
        d = rig.drop("batch-1")
        assert d.state is DropState.READY
        assert d.input_dir == rig.input_dir("batch-1")
        assert d.deployment_id == p.state.config.rules[0].deployment_id
        assert p.is_known("main", "batch-1")
        assert [e["event"] for e in logs] == ["drop.ready"]
        assert logs[0]["files"] == 1 and logs[0]["drop_id"] == d.id
        assert len(rig.ledger.all_drops()) == 1

    run(scenario)


def test_drops_of_an_unknown_rule_are_ignored(rig: Rig):
    """A drop of a rule that is not in the config is not recorded."""

    async def scenario() -> None:
        p = rig.build()
        ready = rig.make_drop("x")
        await p.on_ready(ready.__class__(**{**_fields(ready), "rule": "other"}))
        await asyncio.sleep(0)
        assert rig.ledger.all_drops() == []

    run(scenario)


def test_a_drop_that_changes_before_submission_gets_its_new_fingerprint(rig: Rig):
    """Still `ready`: the new content replaces the old one; no second row."""

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("b"))
        await asyncio.sleep(0)
        before = rig.drop("b").fingerprint
        with capture_logs() as logs:
            await p.on_ready(rig.make_drop("b", {"page-1.pdf": b"longer content now"}))
            await asyncio.sleep(0)
        assert rig.drop("b").fingerprint != before
        assert [e["event"] for e in logs] == ["drop.updated"]
        assert len(rig.ledger.all_drops()) == 1

    run(scenario)


def test_a_drop_handed_over_twice_in_one_batch_keeps_one_row_with_the_last_content(rig: Rig):
    """The detector hands a drop over, then again with new content, before the batch is
    written: one row, recorded and then updated, never a second live row or a lost change."""

    async def scenario() -> None:
        p = rig.build()
        first = rig.make_drop("b")
        second = rig.make_drop("b", {"page-1.pdf": b"longer content now"})
        with capture_logs() as logs:
            await p.on_ready(first)
            await p.on_ready(second)
            await p.on_ready(rig.make_drop("c"))
            await asyncio.sleep(0)
        assert rig.drop("b").fingerprint == second.scan.fingerprint()
        assert [e["event"] for e in logs] == ["drop.ready", "drop.updated", "drop.ready"]
        assert sorted(d.drop for d in rig.ledger.all_drops()) == ["b", "c"]

    run(scenario)


def test_a_changed_finished_drop_is_resubmitted_with_on_change_resubmit(rig: Rig):
    """on_change: resubmit: a finished drop whose content changed gets a fresh `ready` row."""
    rig.rule = {"on_change": "resubmit"}

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("b"))
        await asyncio.sleep(0)
        first = _finish(rig, "b")
        with capture_logs() as logs:
            await p.on_ready(rig.make_drop("b", {"page-1.pdf": b"v2 of the content"}))
            await asyncio.sleep(0)
        again = rig.drop("b")
        assert again.id != first and again.state is DropState.READY
        assert logs[0]["event"] == "drop.resubmit"
        assert logs[0]["previous_drop_id"] == first

    run(scenario)


def test_a_changed_finished_drop_is_warned_about_once_by_default(rig: Rig):
    """Without on_change: resubmit, a changed finished drop logs one warning and stays as is."""

    async def scenario() -> None:
        p = rig.build()
        await p.on_ready(rig.make_drop("b"))
        await asyncio.sleep(0)
        first = _finish(rig, "b")
        changed = rig.make_drop("b", {"page-1.pdf": b"v2 of the content"})
        with capture_logs() as logs:
            for _ in range(3):
                await p.on_ready(changed)
                await asyncio.sleep(0)
        assert [e["event"] for e in logs] == ["drop.changed_after_submit"]
        assert logs[0]["log_level"] == "warning"
        assert rig.drop("b").id == first and rig.drop("b").state is DropState.COMPLETE

    run(scenario)


def _fields(ready):
    return {k: getattr(ready, k) for k in ("rule", "drop", "scan", "marker", "detected_at")}


def _finish(rig: Rig, name: str) -> str:
    """Walk a drop through to `complete` in the ledger, as a real run would."""
    led = rig.ledger
    d = rig.drop(name)
    led.begin_submit(d.id, now=1.0)
    led.mark_submitted(d.id, run_id="r-1", run_status="RUNNING", response="{}", now=2.0)
    led.set_run_status(d.id, run_status="COMPLETE", response="{}", now=3.0)
    return d.id


def test_a_folder_name_that_is_not_utf8_is_rejected_and_the_others_run(rig: Rig):
    """bad-\\xff\\xfe beside three good drops: the good ones are recorded, the bad one is
    `rejected` once, under its escaped name, with the reason."""

    async def scenario() -> None:
        p = rig.build()
        raw = os.fsdecode(b"bad-\xff\xfe")
        (rig.watch / raw).mkdir()
        drops = [rig.make_drop(n) for n in ("good-1", "good-2")]
        bad = ReadyDrop(rule="main", drop=raw, scan=drops[0].scan, marker=None, detected_at=0)
        drops += [bad, rig.make_drop("good-3")]
        with capture_logs() as logs:
            for ready in drops:
                await p.on_ready(ready)
            await asyncio.sleep(0)
            await p.on_ready(bad)  # seen again (a rescan, or after a restart): no new error
            await asyncio.sleep(0)
        states = {d.drop: d.state for d in rig.ledger.all_drops()}
        assert states == {
            "good-1": DropState.READY,
            "good-2": DropState.READY,
            "good-3": DropState.READY,
            "bad-\\xff\\xfe": DropState.REJECTED,
        }
        (error,) = [e for e in logs if e["log_level"] == "error"]
        assert error["event"] == "drop.rejected" and error["drop"] == "bad-\\xff\\xfe"
        assert "not valid UTF-8" in (rig.ledger.find_active("main", "bad-\\xff\\xfe").last_error)

    run(scenario)


def test_an_unexpected_error_on_one_drop_does_not_block_the_batch(rig: Rig, monkeypatch):
    """A drop whose row cannot be written is logged and retried later; the rest are recorded."""

    async def scenario() -> None:
        p = rig.build()
        real = rig.ledger.record_ready

        def flaky(**kw):
            if kw["drop"] == "cursed":
                raise RuntimeError("disk says no")
            return real(**kw)

        monkeypatch.setattr(rig.ledger, "record_ready", flaky)
        with capture_logs() as logs:
            for name in ("a", "cursed", "b"):
                await p.on_ready(rig.make_drop(name))
            await asyncio.sleep(0)
        assert {d.drop for d in rig.ledger.all_drops()} == {"a", "b"}
        assert not p.is_known("main", "cursed")  # so the next scan hands it over again
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["drop.record_failed"]

    run(scenario)


def test_a_batch_that_cannot_commit_forgets_its_drops_so_the_next_scan_retries(
    rig: Rig, monkeypatch
):
    """The ledger refuses the commit (a full or read-only disk): no drop stays known without a
    row, so once the ledger is writable again the next hand-over records them."""
    import contextlib
    import sqlite3

    async def scenario() -> None:
        p = rig.build()
        real_batch = rig.ledger.batch

        @contextlib.contextmanager
        def failing_commit():
            with real_batch():
                yield
                raise sqlite3.OperationalError("disk I/O error")  # rolls the batch back

        monkeypatch.setattr(rig.ledger, "batch", failing_commit)
        drops = [rig.make_drop(name) for name in ("a", "b")]
        with capture_logs() as logs:
            for ready in drops:
                await p.on_ready(ready)
            await asyncio.sleep(0)
        assert rig.ledger.all_drops() == []
        assert not p.is_known("main", "a") and not p.is_known("main", "b")
        errors = [e["event"] for e in logs if e["log_level"] == "error"]
        assert errors == ["drop.record_failed", "drop.record_failed"]
        monkeypatch.setattr(rig.ledger, "batch", real_batch)
        for ready in drops:  # what the detector's next scan does
            await p.on_ready(ready)
        await asyncio.sleep(0)
        assert {d.drop for d in rig.ledger.all_drops()} == {"a", "b"}

    run(scenario)
