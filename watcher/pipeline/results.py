"""Results back to disk: a completed run's results are saved as <results_dir>/<drop>.json.

Every page of the results is fetched and merged, then written atomically (a temp file in the
same folder, fsync, rename). A failed fetch or write is retried with back-off and tracked in the
ledger, where `status` shows it. Imports the pipeline's parts below it, the hub, the ledger.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog

from watcher.config import results_path_for
from watcher.hub.errors import HubAuthError, HubError
from watcher.hub.policy import backoff_delay_s
from watcher.model import Drop
from watcher.pipeline import fsops
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.claims import guarded
from watcher.pipeline.gate import Gate
from watcher.pipeline.state import BEAT_S, PipelineState

log = structlog.get_logger("watcher.pipeline")

MAX_RETRY_S = 3600.0


class ResultsFetcher:
    """Saves the results of completed runs whose rule has a results_dir."""

    def __init__(
        self,
        state: PipelineState,
        *,
        calls: HubCalls,
        gate: Gate,
        then: Callable[[Drop], Coroutine[Any, Any, None]],
    ) -> None:
        self._state = state
        self._calls = calls
        self._gate = gate
        self._then = then  # the post-run action, once the results are safe on disk
        self._retry_at: dict[str, float] = {}

    def wanted(self, d: Drop) -> bool:
        """True when this completed drop's rule asks for its results on disk."""
        rule = self._state.rules.get(d.rule)
        return rule is not None and rule.results_dir is not None and d.run_id is not None

    async def run(self) -> None:
        state = self._state
        while not state.stopping:
            state.beat("results")
            if await self._gate.wait_unpaused(BEAT_S):
                now = time.monotonic()
                for d in self._pending():
                    if self._retry_at.get(d.id, 0.0) <= now and self._state.ledger.claim(d.id):
                        await guarded(self.fetch(d))
            wake = state.wake_stages
            wake.clear()
            try:
                async with asyncio.timeout(BEAT_S):
                    await wake.wait()
            except TimeoutError:
                pass

    def _pending(self) -> list[Drop]:
        return self._state.ledger.stages.results_pending_drops()

    async def fetch(self, d: Drop) -> None:
        """Fetch every page, write the file, record it; or schedule another try."""
        rule = self._state.rules.get(d.rule)
        fields = {"rule": d.rule, "drop": d.drop, "drop_id": d.id, "run_id": d.run_id}
        if rule is None or d.run_id is None:
            return  # a removed rule: kept pending until it is back (status shows it)
        run_id, options = d.run_id, dict(rule.results_options)
        try:
            path = results_path_for(rule, d.drop, now=datetime.now(UTC))
            assert path is not None
            results = await self._calls.call(lambda c: c.fetch_run_results(run_id, options=options))
            data = json.dumps(results, indent=2, ensure_ascii=False).encode("utf-8")
            async with asyncio.timeout(fsops.FS_TIMEOUT_S):
                await asyncio.to_thread(fsops.write_atomically, path, data)
        except HubAuthError as exc:
            self._gate.pause(str(exc), exc.http_status)
            return
        except (HubError, OSError, ValueError, TimeoutError) as exc:
            self._failed(d, exc, fields)
            return
        saved = self._state.ledger.stages.results_saved(d.id, path=str(path), now=time.time())
        self._retry_at.pop(d.id, None)
        log.info("results.saved", **fields, path=str(path), bytes=len(data))
        await self._then(saved)

    def _failed(self, d: Drop, exc: Exception, fields: dict[str, Any]) -> None:
        error = "timed out writing" if isinstance(exc, TimeoutError) else str(exc)
        failed = self._state.ledger.stages.results_failed(d.id, error=error, now=time.time())
        delay = backoff_delay_s(failed.results_attempts, base_s=5.0, cap_s=MAX_RETRY_S)
        self._retry_at[d.id] = time.monotonic() + delay
        log.warning(
            "results.failed",
            **fields,
            attempt=failed.results_attempts,
            retry_in_s=round(delay, 3),
            error=error,
        )
