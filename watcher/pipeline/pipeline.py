"""`Pipeline`: wires intake, gate, submit, reconcile, track, finish and housekeeping together.

The path of a drop: `Intake.on_ready` records it `ready` -> `Submitter` records the intent and
POSTs -> `Reconciler` settles unknown outcomes -> `Tracker` polls the run -> `Finisher` applies
on_complete / on_failure. Imports its parts, the hub adapter, the ledger and the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from watcher.config import Config
from watcher.hub.client import HubClient
from watcher.ledger import Ledger
from watcher.metrics import NO_METRICS, Metrics
from watcher.model import ReadyDrop
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.claims import ClaimKeeper
from watcher.pipeline.finish import Finisher
from watcher.pipeline.gate import Gate, RateLimiter
from watcher.pipeline.housekeeping import Housekeeper
from watcher.pipeline.intake import Intake
from watcher.pipeline.reconcile import Reconciler
from watcher.pipeline.remote import RemoteCheck
from watcher.pipeline.results import ResultsFetcher
from watcher.pipeline.state import Forget, PipelineState
from watcher.pipeline.submit import Submitter
from watcher.pipeline.track import Tracker
from watcher.pipeline.upload import Uploader


class Pipeline:
    """Owns every drop from `ready` to its terminal state."""

    def __init__(
        self,
        *,
        config: Config,
        ledger: Ledger,
        client: HubClient,
        track_min_s: float = 1.0,
        track_max_s: float = 30.0,
        probe_s: float = 30.0,
        housekeeping_s: float = 60.0,
        post_action_retry_s: float = 5.0,
        forget: Forget | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.state = state = PipelineState(
            config=config, ledger=ledger, forget=forget, clock=clock, metrics=metrics
        )
        self.calls = HubCalls(client, max_concurrency=config.hub.max_concurrency)
        self.gate = Gate(
            calls=self.calls,
            max_rps=config.hub.max_rps,
            probe_s=probe_s,
            on_resume=state.wake_all,
            is_stopping=state.is_stopping,
        )
        self.intake = Intake(state)
        self.reconciler = Reconciler(state, calls=self.calls, gate=self.gate)
        self.submitter = Submitter(
            state, calls=self.calls, gate=self.gate, reconciler=self.reconciler
        )
        self.finisher = Finisher(state, calls=self.calls, retry_base_s=post_action_retry_s)
        self.remote = RemoteCheck(state, calls=self.calls, gate=self.gate)
        self.uploader = Uploader(state, calls=self.calls, gate=self.gate)
        self.results = ResultsFetcher(
            state, calls=self.calls, gate=self.gate, then=self.finisher.post_run
        )
        self.tracker = Tracker(
            state,
            calls=self.calls,
            gate=self.gate,
            finisher=self.finisher,
            wants_results=self.results.wanted,
            flush_submitted=self.submitter.flush_submitted,
            min_s=track_min_s,
            max_s=track_max_s,
        )
        self.housekeeper = Housekeeper(state, interval_s=housekeeping_s)
        self.claims = ClaimKeeper(state)

    # --- wiring -----------------------------------------------------------------------------

    def set_forget(self, forget: Forget) -> None:
        self.state.forget = forget

    @property
    def paused(self) -> bool:
        """Paused on an auth failure (until a submission succeeds again)."""
        return self.gate.pause_reason is not None

    @property
    def pause_reason(self) -> str | None:
        """Why submissions are paused (the auth error), None when they are not."""
        return self.gate.pause_reason

    def beat_ages(self) -> dict[str, float]:
        """Seconds since each loop's last sign of life."""
        now = time.monotonic()
        return {name: round(now - at, 3) for name, at in sorted(self.state.beats.items())}

    def is_known(self, rule: str, drop: str) -> bool:
        """True when the ledger has a live row for this drop (safe from any thread)."""
        return self.intake.is_known(rule, drop)

    async def on_ready(self, ready: ReadyDrop) -> None:
        await self.intake.on_ready(ready)

    def stale_loops(self, max_age_s: float) -> list[str]:
        """The loops that have not shown a sign of life for `max_age_s` (empty: all alive)."""
        now = time.monotonic()
        return sorted(name for name, at in self.state.beats.items() if now - at > max_age_s)

    def counts(self) -> dict[str, int]:
        return self.state.ledger.counts()

    def update_config(self, config: Config) -> None:
        """Apply a reloaded config. Drops not yet submitted take their rule's new deployment,
        settings and output_dir; those of a removed rule are failed with a hint, as after a
        restart; runs already submitted are followed to their end (their action is `keep`)."""
        state = self.state
        old, state.config = state.config, config
        # The submit loop reads the rules (active_hours, tz, priority) afresh on each turn.
        state.rules = {r.name: r for r in config.rules}
        if config.hub.max_rps != old.hub.max_rps:
            self.gate.limiter = RateLimiter(config.hub.max_rps)
        if config.hub.max_concurrency != old.hub.max_concurrency:
            self.submitter.resize(config.hub.max_concurrency)
            self.calls.resize(config.hub.max_concurrency)
        state.wake_submit.set()

    def replace_client(self, client: HubClient) -> None:
        """Swap in a client built with a new token or hub settings; if paused, try it."""
        self.calls.replace_client(client)
        self.gate.try_again("token changed")

    # --- lifecycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Load the live drops; queue those left `submitting` for reconcile; track the rest.
        On a shared ledger: only the drops this host holds or now claims."""
        if self.claims.active:
            self.state.ledger.heartbeat()
        self.intake.load_known()
        self.tracker.load_tracked()
        self.reconciler.load_left_submitting()

    async def run(self) -> None:
        """Finish interrupted post-run actions, then submit, track and keep house until
        cancelled."""
        await self.finisher.finish_interrupted()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.submitter.run(), name="submit")
            tg.create_task(self.tracker.run(), name="track")
            tg.create_task(self.housekeeper.run(), name="housekeeping")
            tg.create_task(self.finisher.run(), name="post-run retries")
            tg.create_task(self.remote.run(), name="remote check")
            tg.create_task(self.uploader.run(), name="upload")
            tg.create_task(self.results.run(), name="results")
            if self.claims.active:
                tg.create_task(self.claims.run(), name="claims")

    async def drain(self, timeout_s: float) -> int:
        """Stop taking drops; let in-flight requests finish within `timeout_s`.

        Returns how many were still in flight at the deadline (they stay `submitting` in the
        ledger and are reconciled at the next start).
        """
        self.state.stopping = True
        self.state.wake_all()
        pending = set(self.submitter.inflight)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout_s)
        for task in pending:
            task.cancel()
        self.gate.stop()
        await self.uploader.drain()
        self.intake.flush()
        self.submitter.flush_submitted()
        self.calls.shutdown()
        return len(pending)

    async def settle_calls(self, timeout_s: float) -> None:
        """No new hub call; wait up to `timeout_s` for those on worker threads to return (after
        a ledger outage: a POST in flight reaches AI Hub, or fails, before its drop is
        reconciled by tag)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.to_thread(self.calls.join)

    def close(self) -> None:
        self.calls.shutdown()  # idle worker threads end (after a ledger outage, too)
        self.calls.close()
