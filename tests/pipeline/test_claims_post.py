"""The POST of a run on a shared ledger goes out only while the drop's lease has time left.

The claim is checked on the sending thread; a host frozen right after that check (SIGSTOP, a
VM pause) may wake when its lease has ended and another host holds the drop: the POST must then
not go out. Found by the chaos test of a frozen host (tests/integration/
test_multihost_chaos.py), where such late POSTs ran a drop twice. Freezing a thread at that
exact point cannot be done here, so the check is wrapped to answer as it would after the
freeze: the lease ends in a moment.
"""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from tests.pipeline.conftest import Rig, run, running, until
from watcher.model import DropState


def test_a_post_whose_lease_is_nearly_over_is_not_sent(rig: Rig, pg_dsn: str) -> None:
    rig.dsn = pg_dsn

    async def scenario() -> None:
        p = rig.build()
        ledger = p.state.ledger
        real_check = ledger.check_claim
        woke_late = True

        def check(drop_id: str) -> float | None:
            real_check(drop_id)
            # As after a freeze: the lease ends 1 s from now (the margin is 30 s / 5 = 6 s).
            return time.time() + 1.0 if woke_late else real_check(drop_id)

        ledger.check_claim = check  # type: ignore[method-assign]
        with capture_logs() as logs:
            await p.on_ready(rig.make_drop("late"))
            await asyncio.sleep(0)  # intake writes once per loop turn
            async with running(p.submitter.run()):
                await until(
                    lambda: any(e["event"] == "submit.not_sent" for e in logs),
                    what="the POST held back",
                )
                assert rig.posts() == []
                woke_late = False  # the heartbeat renewed the lease: it goes out, once
                await until(lambda: rig.drop("late").state is DropState.SUBMITTED, what="submitted")
        assert len(rig.posts()) == 1
        held = next(e for e in logs if e["event"] == "submit.not_sent")
        assert held["drop"] == "late" and "nothing was sent" in held["error"]
        assert rig.drop("late").attempts == 1  # the held-back attempt was not counted

    run(scenario)
