"""What the pipeline tells the metrics, as one small interface, and its no-op for metrics off.

Imports nothing from `watcher` (and never prometheus_client): the pipeline imports this.
Every method runs on the event loop and must stay cheap: a counter increment or two.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

# What came of one run POST (the policy's step, named for a person reading a dashboard):
# accepted 202; retried (a retry or an outage back-off: the drop goes again); throttled (429);
# ambiguous (unknown outcome: reconciled by listing runs); rejected (other 4xx);
# unauthorized (401/403: the hub pauses); gave_up (attempts exhausted: the drop failed).
Outcome = Literal[
    "accepted", "retried", "throttled", "ambiguous", "rejected", "unauthorized", "gave_up"
]
OUTCOMES: Final[tuple[Outcome, ...]] = (
    "accepted",
    "retried",
    "throttled",
    "ambiguous",
    "rejected",
    "unauthorized",
    "gave_up",
)


class Metrics(Protocol):
    """The events the pipeline reports (called on the loop thread only)."""

    def submitted(self, rule: str, outcome: Outcome, seconds: float) -> None:
        """One run POST came back with `outcome` after `seconds` (the round trip)."""
        ...

    def run_started(self, rule: str, waited_seconds: float) -> None:
        """A drop's run exists (accepted, or adopted by reconcile) `waited_seconds` after the
        drop was found complete."""
        ...

    def run_finished(self, rule: str, status: str) -> None:
        """A run ended with this AI Hub status (COMPLETE, FAILED, CANCELLED)."""
        ...

    def uploaded(self, rule: str, nbytes: int) -> None:
        """One file of `nbytes` went up into an AI Hub batch."""
        ...


class NoMetrics:
    """Metrics off: every event is dropped."""

    __slots__ = ()

    def submitted(self, rule: str, outcome: Outcome, seconds: float) -> None:
        pass

    def run_started(self, rule: str, waited_seconds: float) -> None:
        pass

    def run_finished(self, rule: str, status: str) -> None:
        pass

    def uploaded(self, rule: str, nbytes: int) -> None:
        pass


NO_METRICS: Final = NoMetrics()
