"""After a run ends: the rule's on_complete / on_failure action, once, then the drop is archived.

Imports the pipeline's state and filesystem helpers; never the hub client.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from watcher.model import Drop, DropState
from watcher.pipeline import fsops
from watcher.pipeline.state import PipelineState

log = structlog.get_logger("watcher.pipeline")


class Finisher:
    """Applies post-run actions only once the run no longer reads the drop's files."""

    def __init__(self, state: PipelineState) -> None:
        self._state = state

    def action_for(self, drop: Drop) -> str:
        """`keep`, `delete` or `move:<dir>`: the rule's on_complete or on_failure."""
        rule = self._state.rules.get(drop.rule)
        if rule is None:
            return "keep"
        return rule.on_complete if drop.state is DropState.COMPLETE else rule.on_failure

    async def finish_interrupted(self) -> None:
        """Post-run actions a crash or shutdown interrupted (terminal run, action not done)."""
        ledger = self._state.ledger
        for d in ledger.in_state(DropState.COMPLETE, DropState.RUN_FAILED, DropState.CANCELLED):
            if not d.post_action_done:
                await self.post_run(d)

    async def post_run(self, drop: Drop) -> None:
        """Apply on_complete / on_failure to a drop whose run ended."""
        state = self._state
        rule = state.rules.get(drop.rule)
        if rule is None or drop.post_action_done:
            return
        action = self.action_for(drop)
        source = rule.watch / drop.drop
        fields = {"rule": drop.rule, "drop": drop.drop, "drop_id": drop.id, "action": action}
        try:
            if action == "delete":
                await asyncio.to_thread(fsops.delete_tree, source)
            elif action.startswith("move:"):
                target = await asyncio.to_thread(
                    fsops.move_aside, source, Path(action[5:]), drop.id
                )
                fields["target"] = str(target)
        except OSError as exc:
            # Logged once; the drop stays where it is for an operator to handle.
            log.error("post_action.failed", **fields, error=repr(exc))
            state.ledger.mark_post_action_done(drop.id)
            return
        state.ledger.mark_post_action_done(drop.id)
        if action != "keep":
            state.ledger.archive(drop.id)
            state.drop_forgotten(drop.rule, drop.drop)
            log.info("post_action.done", **fields)
