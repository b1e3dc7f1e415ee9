"""Prometheus metrics and the health check: what the pipeline reports, and the HTTP listener.

An adapter: imports only the core, never the pipeline, the ledger or the app. This package root
and `events` never import prometheus_client, so a pipeline with metrics off loads none of it;
`recorder`, `collector` and `server` are the only prometheus_client users in `watcher`.
"""

from watcher.metrics.events import NO_METRICS, OUTCOMES, Metrics, NoMetrics, Outcome

__all__ = ["NO_METRICS", "OUTCOMES", "Metrics", "NoMetrics", "Outcome"]
