"""Which rules may submit now (`active_hours`), when the next one opens, and rule priorities.

Only the submission waits for a schedule: a drop of a closed rule is still recorded, checked
remotely or uploaded, and waits `ready`. Imports the core (config); never detect or the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from watcher.config.schedule import Schedule, is_open, next_opening
from watcher.pipeline.state import PipelineState

log = structlog.get_logger("watcher.pipeline")


@dataclass(frozen=True, slots=True)
class Closed:
    """The rules outside their schedule at one instant, and when each opens (clock seconds)."""

    opens_at: dict[str, float]

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(self.opens_at)

    def first_opening(self) -> float | None:
        return min(self.opens_at.values(), default=None)


class Schedules:
    """Asked by the submit loop each turn. Reads the current rules from the shared state, so a
    reload that changes active_hours, tz or priority applies on the next turn."""

    def __init__(self, state: PipelineState) -> None:
        self._state = state
        # rule -> (its schedule, when it opens): still closed until then, no need to recompute.
        self._closed: dict[str, tuple[Schedule, float]] = {}
        self._last_now = 0.0

    def closed(self) -> Closed:
        """The rules that may not submit now. Logs `schedule.closed` / `schedule.opened` once
        per change."""
        now = self._state.clock()
        when = datetime.fromtimestamp(now, UTC)
        # A clock stepped back may land in an open window: then nothing known holds.
        stepped_back, self._last_now = now < self._last_now, now
        still: dict[str, tuple[Schedule, float]] = {}
        for rule in self._state.rules.values():
            schedule = rule.active_hours
            if schedule is None:
                continue
            known = self._closed.get(rule.name)
            if known is not None and known[0] == schedule and now < known[1] and not stepped_back:
                still[rule.name] = known
            elif not is_open(schedule, when):
                opens = next_opening(schedule, when)
                still[rule.name] = (schedule, opens.timestamp())
                if known is None:
                    log.info(
                        "schedule.closed",
                        rule=rule.name,
                        active_hours=str(schedule),
                        opens_at=opens.isoformat(),
                    )
        for name in self._closed.keys() - still.keys():
            log.info("schedule.opened", rule=name)
        self._closed = still
        return Closed({name: opens for name, (_s, opens) in still.items()})

    def priority(self) -> dict[str, int] | None:
        """rule -> priority, for the ledger's due(); None when every rule has the same one."""
        prio = {r.name: r.priority for r in self._state.rules.values()}
        return prio if len(set(prio.values())) > 1 else None
