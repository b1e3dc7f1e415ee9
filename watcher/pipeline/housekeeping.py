"""Housekeeping: forget finished drops whose folder is gone, so a new drop of that name is new.

Imports the pipeline's state and filesystem helpers; never the hub client.
"""

from __future__ import annotations

import asyncio

import structlog

from watcher.model import SETTLED
from watcher.pipeline import fsops
from watcher.pipeline.state import PipelineState

log = structlog.get_logger("watcher.pipeline")

# A drop folder must be seen missing this many rounds in a row before it is forgotten.
MISSING_ROUNDS = 2


class Housekeeper:
    """Every `interval_s`, archives settled drops whose folder has been gone for two rounds
    (never one whose run waits for review: it is still tracked)."""

    def __init__(self, state: PipelineState, *, interval_s: float) -> None:
        self._state = state
        self._interval_s = interval_s
        self._missing_rounds: dict[str, int] = {}

    async def run(self) -> None:
        while not self._state.is_stopping():
            await asyncio.sleep(self._interval_s)
            await self.one_round()

    async def one_round(self) -> None:
        state = self._state
        finished = [d for d in state.ledger.active_drops() if d.state in SETTLED]
        pairs = [(d, state.rules.get(d.rule)) for d in finished]
        try:
            async with asyncio.timeout(fsops.FS_TIMEOUT_S):
                gone = await asyncio.to_thread(fsops.missing, pairs, dict(state.root_dev))
        except TimeoutError:
            log.warning("housekeeping.timed_out", hint="a watched folder's mount is not answering")
            return
        gone_ids = {d.id for d in gone}
        for drop_id in list(self._missing_rounds):
            if drop_id not in gone_ids:
                del self._missing_rounds[drop_id]
        for d in gone:
            rounds = self._missing_rounds.get(d.id, 0) + 1
            self._missing_rounds[d.id] = rounds
            if rounds < MISSING_ROUNDS:
                continue
            del self._missing_rounds[d.id]
            state.ledger.archive(d.id)
            state.drop_forgotten(d.rule, d.drop)
            log.info("drop.forgotten", rule=d.rule, drop=d.drop, drop_id=d.id)
