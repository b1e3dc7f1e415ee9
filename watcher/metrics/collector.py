"""The scrape-time series: drops by rule and state, queue depth, oldest ready age, hub paused,
loop heartbeats, built from one `Snapshot` per scrape.

Imports prometheus_client and this package. The snapshot callable does the reading; the event
loop does nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watcher.metrics import series
from watcher.metrics.snapshot import Snapshot

__all__ = ["ScrapeCollector"]

READY = "ready"


class ScrapeCollector(Collector):
    """Families from a snapshot taken at scrape time; none of their samples when the
    snapshot is not available (the daemon is stopping, or its loop does not answer)."""

    def __init__(self, snapshot: Callable[[], Snapshot | None]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        # Without this, registering would take a snapshot to learn the names.
        for spec in series.SERIES:
            if spec.at_scrape:
                yield _family(spec)

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        if snap is None:
            yield from self.describe()
            return
        yield _drops(snap)
        queue, oldest = _ready(snap)
        yield queue
        yield oldest
        schedule = _family(series.SCHEDULE_OPEN)
        for rule in sorted(snap.rules):
            schedule.add_metric([rule], 0.0 if rule in snap.closed else 1.0)
        yield schedule
        paused = _family(series.HUB_PAUSED)
        paused.add_metric([], 1.0 if snap.paused else 0.0)
        yield paused
        beats = _family(series.LOOP_BEAT_AGE)
        for loop, age in sorted(snap.beat_ages.items()):
            beats.add_metric([loop], age)
        yield beats


def _family(spec: series.Series) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.doc, labels=spec.labels)


def _drops(snap: Snapshot) -> GaugeMetricFamily:
    values = {(rule, state): 0 for rule in snap.rules for state in snap.states}
    for c in snap.counts:
        values[(c.rule, c.state)] = c.drops
    family = _family(series.DROPS)
    for (rule, state), n in sorted(values.items()):
        family.add_metric([rule, state], n)
    return family


def _ready(snap: Snapshot) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    due = dict.fromkeys(snap.rules, 0)
    oldest = dict.fromkeys(snap.rules, 0.0)
    for c in snap.counts:
        if c.state != READY:
            continue
        due[c.rule] = c.due
        oldest[c.rule] = max(0.0, snap.now - c.oldest_at) if c.oldest_at is not None else 0.0
    queue_family = _family(series.QUEUE_DEPTH)
    for rule, n in sorted(due.items()):
        queue_family.add_metric([rule], n)
    age_family = _family(series.OLDEST_READY_AGE)
    for rule, age in sorted(oldest.items()):
        age_family.add_metric([rule], round(age, 3))
    return queue_family, age_family
