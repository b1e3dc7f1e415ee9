"""Every series the service exports, declared once: name, type, help, labels, buckets.

Imports nothing from `watcher` (and never prometheus_client). The recorder and the collector
build their metrics from this table; the README's table and the contrib/ files use these names
(a test checks the dashboard and the alert rules against the registry built from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

PREFIX: Final = "aihub_watcher_"

Kind = Literal["counter", "gauge", "histogram"]

# Seconds: a POST takes tens of milliseconds to a few seconds (timeout_seconds caps it).
LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds from a complete drop to its run: settle and upload are done by then, so this is the
# queue (max_rps, holds, pauses, retries) plus the POST; minutes to hours when the hub is down.
WAIT_BUCKETS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """One metric family. `name` is the family name (a counter's samples add `_total`)."""

    name: str
    kind: Kind
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    # Read from the ledger and the pipeline when scraped (not counted as things happen).
    at_scrape: bool = False

    def sample_names(self) -> tuple[str, ...]:
        """The names its samples carry in the text exposition."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}{s}" for s in ("_bucket", "_sum", "_count"))
        return (self.name,)


SUBMISSIONS: Final = Series(
    name=PREFIX + "submissions",
    kind="counter",
    doc="Run POSTs by outcome: accepted, retried, throttled, ambiguous, rejected, "
    "unauthorized, gave_up",
    labels=("rule", "outcome"),
)
RUNS_FINISHED: Final = Series(
    name=PREFIX + "runs_finished",
    kind="counter",
    doc="Runs that ended, by final AI Hub status (COMPLETE, FAILED, CANCELLED)",
    labels=("rule", "status"),
)
UPLOADED_BYTES: Final = Series(
    name=PREFIX + "uploaded_bytes",
    kind="counter",
    doc="Bytes uploaded into AI Hub batches (source: upload)",
    labels=("rule",),
)
SUBMIT_LATENCY: Final = Series(
    name=PREFIX + "submit_latency_seconds",
    kind="histogram",
    doc="Round trip of each run POST, whatever its outcome",
    buckets=LATENCY_BUCKETS,
)
DROP_TO_RUN: Final = Series(
    name=PREFIX + "drop_to_run_seconds",
    kind="histogram",
    doc="Time from a drop found complete to its run accepted (or adopted) by AI Hub",
    buckets=WAIT_BUCKETS,
)
LAST_SUBMISSION: Final = Series(
    name=PREFIX + "last_submission_timestamp_seconds",
    kind="gauge",
    doc="Unix time of the last accepted run POST (0: none since the daemon started)",
)
DROPS: Final = Series(
    name=PREFIX + "drops",
    kind="gauge",
    doc="Drops in the ledger by rule and state (archived ones included, as in `status`)",
    labels=("rule", "state"),
    at_scrape=True,
)
QUEUE_DEPTH: Final = Series(
    name=PREFIX + "queue_depth",
    kind="gauge",
    doc="Ready drops due for submission now (not waiting out a retry delay)",
    labels=("rule",),
    at_scrape=True,
)
OLDEST_READY_AGE: Final = Series(
    name=PREFIX + "oldest_ready_age_seconds",
    kind="gauge",
    doc="Age of the oldest ready drop, since it was found complete (0: none ready)",
    labels=("rule",),
    at_scrape=True,
)
SCHEDULE_OPEN: Final = Series(
    name=PREFIX + "schedule_open",
    kind="gauge",
    doc="1 while the rule may submit (no active_hours, or inside them), 0 outside its active_hours",
    labels=("rule",),
    at_scrape=True,
)
HUB_PAUSED: Final = Series(
    name=PREFIX + "hub_paused",
    kind="gauge",
    doc="1 while submissions are paused on an auth failure (401/403), else 0",
    at_scrape=True,
)
LOOP_BEAT_AGE: Final = Series(
    name=PREFIX + "loop_beat_age_seconds",
    kind="gauge",
    doc="Seconds since each pipeline loop last showed a sign of life",
    labels=("loop",),
    at_scrape=True,
)

SERIES: Final = (
    SUBMISSIONS,
    RUNS_FINISHED,
    UPLOADED_BYTES,
    SUBMIT_LATENCY,
    DROP_TO_RUN,
    LAST_SUBMISSION,
    DROPS,
    QUEUE_DEPTH,
    OLDEST_READY_AGE,
    SCHEDULE_OPEN,
    HUB_PAUSED,
    LOOP_BEAT_AGE,
)
