"""systemd integration while running: STATUS= with live counters and the WATCHDOG=1 pings.

Imports sdnotify and the pipeline (for its counts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import structlog

from watcher.pipeline.service import PipelineService
from watcher.pipeline.state import BEAT_S
from watcher.sdnotify import Notifier

log = structlog.get_logger("watcher.daemon")

STATUS_EVERY_S = 5.0
STATUS_ORDER = (
    "ready",
    "submitting",
    "submitted",
    "complete",
    "failed",
    "rejected",
    "needs_review",
)


def counts_text(counts: Mapping[str, int]) -> str:
    """One short line for systemd's STATUS=."""
    parts = [f"{k} {counts.get(k, 0)}" for k in STATUS_ORDER if counts.get(k)]
    return ", ".join(parts) or "idle"


async def systemd_pings(notifier: Notifier, pipeline: PipelineService) -> None:
    """STATUS= with live counters every few seconds; WATCHDOG=1 at half the configured interval,
    but only while the pipeline's loops are alive, so a stuck loop trips WatchdogSec and systemd
    restarts the service (a hub paused on a bad token is alive: its loops keep beating)."""
    interval = notifier.watchdog_interval_s
    period = min(interval, STATUS_EVERY_S) if interval else STATUS_EVERY_S
    last_status = ""
    last_status_at = 0.0
    stuck_logged = False
    while True:
        if interval:
            stuck = pipeline.stale_loops(max(interval * 1.5, 3 * BEAT_S))
            if not stuck:
                notifier.watchdog()
                stuck_logged = False
            elif not stuck_logged:
                stuck_logged = True
                log.critical("daemon.stuck", loops=stuck, hint="no WATCHDOG=1 until they recover")
        now = time.monotonic()
        if notifier.enabled and now - last_status_at >= STATUS_EVERY_S:
            text = counts_text(pipeline.counts())
            if pipeline.paused:
                text = "PAUSED (auth): " + text
            if text != last_status:
                notifier.status(text)
                last_status = text
            last_status_at = now
        await asyncio.sleep(period)
