"""active_hours and priority in the submit loop: a closed rule's drops wait `ready` and go in
order when it opens; a backlog across rules goes by priority. The schedule's clock is injected
(shifted to a chosen Sunday/Monday), never the process's."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from structlog.testing import capture_logs

from tests.pipeline.conftest import REMOTE, Rig, run, running, until
from watcher.config import parse_config
from watcher.model import DropState

# Monday 2026-12-07 07:00 in Paris.
OPENS = datetime(2026, 12, 7, 6, 0, tzinfo=UTC).timestamp()
SUNDAY_NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()


class ShiftedClock:
    """Real time moved to `start`; `jump_to(t)` moves it on (time keeps flowing from there)."""

    def __init__(self, start: float) -> None:
        self.offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def jump_to(self, t: float) -> None:
        self.offset = t - time.time()


def _submitted(rig: Rig, *drops: tuple[str, str]) -> bool:
    rig.pipeline.submitter.flush_submitted()
    rows = [rig.ledger.find_active(rule, name) for rule, name in drops]
    return all(d is not None and d.state is DropState.SUBMITTED for d in rows)


def _input_dirs(rig: Rig) -> list[str]:
    return [r["input_dir"] for r in rig.sim.runs]


def test_a_closed_rules_drops_wait_and_go_oldest_first_when_it_opens(rig: Rig):
    """Sunday: `office` (Mon-Fri 07:00-19:00 Paris) keeps its drops `ready` while `other`'s
    goes at once; at Monday 07:00 they go, oldest first, no earlier, without a wake-up."""
    rig.rule = {"active_hours": "Mon-Fri 07:00-19:00", "tz": "Europe/Paris"}
    rig.extra_rules = {"other": {"active_hours": None, "tz": None}}
    rig.hub = {"max_concurrency": 1}
    clock = ShiftedClock(SUNDAY_NOON)
    rig.pipeline_kw = {"clock": clock}

    async def scenario() -> None:
        p = rig.build()
        with capture_logs() as logs:
            for name in ("b1", "b2"):
                await p.on_ready(rig.make_drop(name))
            await p.on_ready(rig.make_drop("o1", rule="other"))
            await asyncio.sleep(0)  # intake writes once per loop turn
            async with running(p.submitter.run()):
                await until(lambda: _submitted(rig, ("other", "o1")), what="o1 submitted")
                assert _input_dirs(rig) == [f"{REMOTE}-other/o1"]
                assert rig.drop("b1").state is DropState.READY
                assert rig.drop("b2").state is DropState.READY
                # One second before the opening: the loop sleeps until 07:00 by itself.
                clock.jump_to(OPENS - 1.0)
                await until(
                    lambda: _submitted(rig, ("main", "b1"), ("main", "b2")),
                    timeout=15,
                    what="b1, b2 submitted",
                )
        assert _input_dirs(rig)[1:] == [rig.input_dir("b1"), rig.input_dir("b2")]
        for name in ("b1", "b2"):
            intent_at = rig.drop(name).intent_at
            assert intent_at is not None and intent_at + clock.offset >= OPENS
        closed = [e for e in logs if e["event"] == "schedule.closed"]
        assert closed == [
            {
                "event": "schedule.closed",
                "log_level": "info",
                "rule": "main",
                "active_hours": "Mon-Fri 07:00-19:00 (Europe/Paris)",
                "opens_at": "2026-12-07T07:00:00+01:00",
            }
        ]
        assert [e["rule"] for e in logs if e["event"] == "schedule.opened"] == ["main"]

    run(scenario)


def test_a_backlog_goes_to_the_simulator_higher_priority_first(rig: Rig):
    """Drops of `main` (priority 0) waiting longer than `urgent`'s (priority 5) still go after
    them; `low` (priority -1) goes last; within a rule, oldest first."""
    rig.extra_rules = {"urgent": {"priority": 5}, "low": {"priority": -1}}
    rig.hub = {"max_concurrency": 1}

    async def scenario() -> None:
        p = rig.build()
        order = [("low", "l1"), ("main", "m1"), ("main", "m2"), ("urgent", "u1"), ("urgent", "u2")]
        for rule, name in order:
            await p.on_ready(rig.make_drop(name, rule=rule))
        await asyncio.sleep(0)  # intake writes once per loop turn
        async with running(p.submitter.run()):
            await until(lambda: _submitted(rig, *order), timeout=20, what="all submitted")
        assert _input_dirs(rig) == [
            f"{REMOTE}-urgent/u1",
            f"{REMOTE}-urgent/u2",
            f"{REMOTE}/m1",
            f"{REMOTE}/m2",
            f"{REMOTE}-low/l1",
        ]

    run(scenario)


def test_a_reload_that_opens_the_schedule_sends_the_waiting_drops(rig: Rig):
    """Drops waiting for a closed schedule are sent once a reload widens active_hours; none is
    lost or sent twice."""
    rig.rule = {"active_hours": "Mon 07:00-08:00", "tz": "Europe/Paris"}
    rig.pipeline_kw = {"clock": ShiftedClock(SUNDAY_NOON)}

    async def scenario() -> None:
        p = rig.build()
        for name in ("b1", "b2", "b3"):
            await p.on_ready(rig.make_drop(name))
        await asyncio.sleep(0)  # intake writes once per loop turn
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: any(e["event"] == "schedule.closed" for e in logs))
                assert rig.sim.runs == []
                rig.rule = {"active_hours": "Sat,Sun", "tz": "Europe/Paris", "priority": 3}
                config = parse_config(
                    rig.config_text(), path=rig.tmp / "c.yaml", env={"AIHUB_TEST_TOKEN": "t"}
                )
                p.update_config(config)
                names = [("main", n) for n in ("b1", "b2", "b3")]
                await until(lambda: _submitted(rig, *names), what="all submitted")
                await asyncio.sleep(0)
        assert sorted(_input_dirs(rig)) == [rig.input_dir(n) for n in ("b1", "b2", "b3")]
        assert [e["rule"] for e in logs if e["event"] == "schedule.opened"] == ["main"]

    run(scenario)


def test_the_closed_set_follows_the_clock_both_ways():
    """Closed until the opening (remembered, not recomputed), open after; a clock stepped back
    into the window reopens the rule at once."""
    from pathlib import Path
    from types import SimpleNamespace

    from watcher.config import Rule
    from watcher.pipeline.schedules import Schedules

    rule = Rule(
        name="office",
        watch=Path("/w"),
        deployment_id="d",
        active_hours="Mon-Fri 07:00-19:00",
        tz="Europe/Paris",
    )
    clock = ShiftedClock(OPENS + 3600)  # Monday 08:00 Paris: open
    schedules = Schedules(SimpleNamespace(clock=clock, rules={"office": rule}))
    assert schedules.closed().opens_at == {}
    clock.jump_to(SUNDAY_NOON)
    assert schedules.closed().opens_at == {"office": OPENS}
    clock.jump_to(OPENS - 60)
    assert schedules.closed().first_opening() == OPENS
    clock.jump_to(OPENS)
    assert schedules.closed().opens_at == {}
    clock.jump_to(SUNDAY_NOON)
    assert schedules.closed().rules == {"office"}
    clock.jump_to(OPENS + 60)  # forward past the opening: open
    assert schedules.closed().rules == frozenset()
    clock.jump_to(SUNDAY_NOON)
    schedules.closed()
    clock.jump_to(OPENS - 7 * 86400 + 3 * 3600)  # stepped back to the Monday before, 10:00
    assert schedules.closed().rules == frozenset()


def test_a_paused_hubs_trial_waits_for_a_drop_whose_rule_is_open(rig: Rig):
    """401/403 pause at 18:59:58; the token works again once the rule has closed: the trial is
    not spent on nothing, and at the next opening the drop goes and the hub resumes."""
    rig.rule = {"active_hours": "Mon-Fri 07:00-19:00", "tz": "Europe/Paris"}
    clock = ShiftedClock(OPENS + 12 * 3600 - 2)  # Monday 18:59:58 Paris
    rig.pipeline_kw = {"probe_s": 0.1, "clock": clock}

    async def scenario() -> None:
        p = rig.build()
        rig.sim.options.forbid_runs = True
        await p.on_ready(rig.make_drop("b1"))
        await asyncio.sleep(0)
        with capture_logs() as logs:
            async with running(p.submitter.run()):
                await until(lambda: p.paused, what="hub paused")
                clock.jump_to(OPENS + 12 * 3600 + 60)  # 19:01: closed
                rig.sim.options.forbid_runs = False
                await until(lambda: any(e["event"] == "hub.trial" for e in logs), what="trial")
                await until(lambda: rig.drop("b1").state is DropState.READY, what="b1 ready")
                clock.jump_to(OPENS + 86400 - 1)  # Tuesday 06:59:59
                await until(lambda: _submitted(rig, ("main", "b1")), what="b1 submitted")
        assert [e["event"] for e in logs].count("hub.resumed") == 1

    run(scenario)
