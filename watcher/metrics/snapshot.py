"""What a scrape and /healthz read from the running daemon: plain values, taken on the loop.

Imports only the core (`watcher.model`); never prometheus_client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from watcher.model import StateCount


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The values of the scrape-time series at one moment."""

    now: float  # time.time() when taken
    counts: tuple[StateCount, ...] = ()
    # Every configured rule and every drop state get a series, 0 when empty.
    rules: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    paused: bool = False
    # The rules outside their active_hours now (their ready drops wait for the schedule).
    closed: frozenset[str] = frozenset()
    beat_ages: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Health:
    """/healthz: 200 with "ok", or 503 with a one-line reason."""

    ok: bool
    reason: str = "ok"

    def body(self) -> bytes:
        return (" ".join(self.reason.split()) + "\n").encode()
