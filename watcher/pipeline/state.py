"""The state the pipeline's parts share: one small explicit object, touched only on the loop.

Imports the core, the ledger and the metrics interface; never detect, the app or the CLI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from watcher.config import Config, Rule
from watcher.ledger import Ledger
from watcher.metrics import NO_METRICS, Metrics
from watcher.model import Drop

Forget = Callable[[str, str], None]

# The longest a running loop waits without beating; a loop silent for much longer is stuck.
BEAT_S = 5.0


@dataclass(slots=True)
class Unsettled:
    """A POST whose outcome is unknown: when its reconcile listing may run, and what happened."""

    due_mono: float
    error: str


@dataclass(slots=True, kw_only=True)
class PipelineState:
    """What intake, submit, reconcile, track and finish all read or change.

    Anything only one part uses stays private to that part.
    """

    config: Config
    ledger: Ledger
    # The current config's rules by name (a removed rule's drops: see Pipeline.update_config).
    rules: dict[str, Rule] = field(default_factory=dict)
    # (rule, drop) pairs with a live ledger row; the detector asks this from its own thread.
    known: set[tuple[str, str]] = field(default_factory=set)
    # Drops whose run is being tracked (submitted / needs_review), so a tracker pass costs
    # nothing per untouched run: the ledger is written on changes only.
    tracked: dict[str, Drop] = field(default_factory=dict)
    # Drops `submitting` whose POST outcome is unknown, by drop id.
    needs_reconcile: dict[str, Unsettled] = field(default_factory=dict)
    # Device of each watch root (by path) when its first drop was recorded: housekeeping only
    # forgets drops while the root is the same mount.
    root_dev: dict[str, int] = field(default_factory=dict)
    wake_submit: asyncio.Event = field(default_factory=asyncio.Event)
    wake_track: asyncio.Event = field(default_factory=asyncio.Event)
    # The stage workers around a run: the remote check, the uploader, the results fetcher.
    wake_stages: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by each submission; the tracker looks at new runs within track_min_s.
    new_runs: bool = False
    stopping: bool = False
    # The detector's `forget`: a drop whose row is archived is new again when it reappears.
    forget: Forget | None = None
    # Where counters go (drops, POSTs, runs, bytes); the no-op while metrics are off.
    metrics: Metrics = NO_METRICS
    # Monotonic time of each loop's last sign of life, for systemd's watchdog.
    beats: dict[str, float] = field(default_factory=dict)
    # Fire-and-forget work (marker removal) still running; kept so it is not collected.
    background: set[asyncio.Task[None]] = field(default_factory=set)
    # The wall clock that rule schedules (active_hours) are read on; tests pass a shifted one.
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not self.rules:
            self.rules = {r.name: r for r in self.config.rules}

    def is_stopping(self) -> bool:
        # A method, not the attribute: the flag changes while a loop awaits.
        return self.stopping

    def beat(self, loop: str) -> None:
        """`loop` is alive (it must beat at least every BEAT_S while it runs)."""
        self.beats[loop] = time.monotonic()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run `coro` in the background on the loop."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def wake_all(self) -> None:
        self.wake_submit.set()
        self.wake_track.set()
        self.wake_stages.set()

    def drop_forgotten(self, rule: str, drop: str) -> None:
        """The row of (rule, drop) was archived: a drop of that name is new again."""
        self.known.discard((rule, drop))
        if self.forget is not None:
            self.forget(rule, drop)
