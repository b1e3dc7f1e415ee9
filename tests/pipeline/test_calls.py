"""Hub calls on worker threads: a client replaced by a new token closes once it is idle."""

from __future__ import annotations

import asyncio

import pytest

from tests.pipeline.conftest import Rig, run, until


def test_a_retired_client_closes_when_its_last_call_returns(rig: Rig):
    """Token rotation: the old client serves its call in flight, then is closed, not kept."""
    rig.sim.options.latency_ms = 300

    async def scenario() -> None:
        old = rig.client()
        p = rig.build(client=old)
        slow = asyncio.create_task(p.calls.call(lambda c: c.list_runs(limit=1)))
        await until(lambda: rig.sim.connections_accepted >= 1, what="the call under way")
        p.replace_client(rig.client())
        assert p.calls.retired_open == 1
        await slow  # it finished on the old client
        assert p.calls.retired_open == 0
        with pytest.raises(RuntimeError):
            old.list_runs(limit=1)
        rig.sim.options.latency_ms = 0
        await p.calls.call(lambda c: c.list_runs(limit=1))

    run(scenario)


def test_an_idle_client_closes_at_once_when_replaced(rig: Rig):
    """Nothing in flight: the replaced client is closed right away."""

    async def scenario() -> None:
        old = rig.client()
        p = rig.build(client=old)
        p.replace_client(rig.client())
        assert p.calls.retired_open == 0
        with pytest.raises(RuntimeError):
            old.list_runs(limit=1)

    run(scenario)
