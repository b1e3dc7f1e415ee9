"""The state the pipeline's parts share: one small explicit object, touched only on the loop.

Imports the core and the ledger; never detect, the app or the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from watcher.config import Config, Rule
from watcher.ledger import Ledger
from watcher.model import Drop

Forget = Callable[[str, str], None]


@dataclass(slots=True, kw_only=True)
class PipelineState:
    """What intake, submit, reconcile, track and finish all read or change.

    Anything only one part uses stays private to that part.
    """

    config: Config
    ledger: Ledger
    # Removed rules stay resolvable: their drops already in the ledger still finish.
    rules: dict[str, Rule] = field(default_factory=dict)
    # (rule, drop) pairs with a live ledger row; the detector asks this from its own thread.
    known: set[tuple[str, str]] = field(default_factory=set)
    # Drops whose run is being tracked (submitted / needs_review), so a tracker pass costs
    # nothing per untouched run: the ledger is written on changes only.
    tracked: dict[str, Drop] = field(default_factory=dict)
    # Drop id -> monotonic time before which its reconcile listing must not run.
    needs_reconcile: dict[str, float] = field(default_factory=dict)
    # Device of each rule's watch root when its first drop was recorded: housekeeping only
    # forgets drops while the root is the same mount.
    root_dev: dict[str, int] = field(default_factory=dict)
    wake_submit: asyncio.Event = field(default_factory=asyncio.Event)
    wake_track: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by each submission; the tracker looks at new runs within track_min_s.
    new_runs: bool = False
    stopping: bool = False
    # The detector's `forget`: a drop whose row is archived is new again when it reappears.
    forget: Forget | None = None

    def __post_init__(self) -> None:
        if not self.rules:
            self.rules = {r.name: r for r in self.config.rules}

    def is_stopping(self) -> bool:
        # A method, not the attribute: the flag changes while a loop awaits.
        return self.stopping

    def wake_all(self) -> None:
        self.wake_submit.set()
        self.wake_track.set()

    def drop_forgotten(self, rule: str, drop: str) -> None:
        """The row of (rule, drop) was archived: a drop of that name is new again."""
        self.known.discard((rule, drop))
        if self.forget is not None:
            self.forget(rule, drop)
