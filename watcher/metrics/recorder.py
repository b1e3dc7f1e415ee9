"""`PrometheusMetrics`: the pipeline's events as prometheus_client counters and histograms.

Imports prometheus_client and this package. Each event costs a dict lookup and an increment:
labelled children are cached per label tuple, so nothing is allocated on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watcher.metrics import series
from watcher.metrics.collector import ScrapeCollector
from watcher.metrics.events import Outcome
from watcher.metrics.snapshot import Snapshot

__all__ = ["PrometheusMetrics"]


class PrometheusMetrics:
    """Implements `watcher.metrics.Metrics` over its own registry (no process-wide state)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self._submissions = _LabelledCounter(series.SUBMISSIONS, reg)
        self._runs_finished = _LabelledCounter(series.RUNS_FINISHED, reg)
        self._uploaded = _LabelledCounter(series.UPLOADED_BYTES, reg)
        self._latency = _histogram(series.SUBMIT_LATENCY, reg)
        self._drop_to_run = _histogram(series.DROP_TO_RUN, reg)
        self._last_submission = Gauge(
            series.LAST_SUBMISSION.name, series.LAST_SUBMISSION.doc, registry=reg
        )

    def add_scrape(self, snapshot: Callable[[], Snapshot | None]) -> None:
        """Serve the scrape-time series (drops, queue, paused, ...) from `snapshot`."""
        self.registry.register(ScrapeCollector(snapshot))

    # --- the events (watcher.metrics.Metrics) -----------------------------------------------

    def submitted(self, rule: str, outcome: Outcome, seconds: float) -> None:
        self._submissions.get(rule, outcome).inc()
        self._latency.observe(seconds)
        if outcome == "accepted":
            self._last_submission.set(time.time())

    def run_started(self, rule: str, waited_seconds: float) -> None:
        self._drop_to_run.observe(max(0.0, waited_seconds))

    def run_finished(self, rule: str, status: str) -> None:
        self._runs_finished.get(rule, status).inc()

    def uploaded(self, rule: str, nbytes: int) -> None:
        self._uploaded.get(rule).inc(nbytes)


class _LabelledCounter:
    """A labelled counter whose children are looked up in a plain dict after the first use."""

    __slots__ = ("_children", "_counter")

    def __init__(self, spec: series.Series, registry: CollectorRegistry) -> None:
        self._counter = Counter(spec.name, spec.doc, spec.labels, registry=registry)
        self._children: dict[tuple[str, ...], Counter] = {}

    def get(self, *labels: str) -> Counter:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._counter.labels(*labels)
        return child


def _histogram(spec: series.Series, registry: CollectorRegistry) -> Histogram:
    return Histogram(spec.name, spec.doc, spec.labels, registry=registry, buckets=spec.buckets)
