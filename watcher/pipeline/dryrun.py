"""`DryRunPipeline` (`run --dry-run`): ready drops are recorded in a throwaway ledger and, once
per drop version, the request the real pipeline would send is logged as `run.dry_run`.

Nothing reaches AI Hub: no POST, no HEAD, no batch, no upload. The real ledger is never opened
for writing (the app may pass the drops it already knows, read-only). Imports the pipeline's
intake and request builders, the ledger and the core.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from watcher.config import Config, output_dir_for
from watcher.config.schedule import opening_note
from watcher.hub.client import HubClient
from watcher.ledger import Ledger
from watcher.model import Drop, DropState, ReadyDrop
from watcher.pipeline.intake import Intake
from watcher.pipeline.request import run_call, upload_plan
from watcher.pipeline.state import BEAT_S, Forget, PipelineState

log = structlog.get_logger("watcher.pipeline")

# The states a drop reaches before its POST: each version of a drop in one of them is reported.
REPORTED_STATES = (DropState.WAITING_REMOTE, DropState.UPLOADING, DropState.READY)
# An upload plan's log line lists this many files at most (`file_count` says how many in all).
LOGGED_FILES = 50


class DryRunPipeline:
    """Takes ready drops like `Pipeline` and logs what it would send instead of sending it."""

    def __init__(
        self,
        *,
        config: Config,
        ledger: Ledger,
        client: HubClient,
        known: Iterable[tuple[str, str]] = (),
        scratch: Path | None = None,
    ) -> None:
        self.state = PipelineState(config=config, ledger=ledger)
        self.intake = Intake(self.state)
        self._client = client  # built like the real daemon's (token, CA) but never used
        self._known = set(known)
        self._scratch = scratch
        # (drop id, fingerprint) already reported: a changed drop is reported again.
        self._reported: set[tuple[str, str]] = set()

    @classmethod
    def in_scratch_dir(
        cls, *, config: Config, client: HubClient, known: Iterable[tuple[str, str]] = ()
    ) -> DryRunPipeline:
        """A dry run whose ledger lives in a new temporary folder, removed by `close()`."""
        scratch = Path(tempfile.mkdtemp(prefix="aihub-watcher-dry-run-"))
        try:
            ledger = Ledger(scratch / "ledger.sqlite3")
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return cls(config=config, ledger=ledger, client=client, known=known, scratch=scratch)

    # --- what the daemon wires ---------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return False

    def set_forget(self, forget: Forget) -> None:
        self.state.forget = forget

    def is_known(self, rule: str, drop: str) -> bool:
        return self.intake.is_known(rule, drop)

    async def on_ready(self, ready: ReadyDrop) -> None:
        await self.intake.on_ready(ready)

    def stale_loops(self, max_age_s: float) -> list[str]:
        now = time.monotonic()
        return sorted(name for name, at in self.state.beats.items() if now - at > max_age_s)

    def counts(self) -> dict[str, int]:
        return self.state.ledger.counts()

    def update_config(self, config: Config) -> None:
        self.state.config = config
        self.state.rules = {r.name: r for r in config.rules}
        self.state.wake_submit.set()

    def replace_client(self, client: HubClient) -> None:
        self._client.close()
        self._client = client

    # --- lifecycle ---------------------------------------------------------------------------

    async def startup(self) -> None:
        """Drops the real ledger already knows are skipped, as the real daemon skips them."""
        self.state.known.update(self._known)
        log.info("dry_run.started", known=len(self._known), ledger=str(self.state.ledger.path))

    async def run(self) -> None:
        state = self.state
        while not state.stopping:
            state.beat("dry_run")
            self.report_new()
            state.wake_submit.clear()
            try:
                async with asyncio.timeout(BEAT_S):
                    await state.wake_submit.wait()
            except TimeoutError:
                pass

    async def drain(self, timeout_s: float) -> int:
        self.state.stopping = True
        self.state.wake_all()
        self.intake.flush()
        return 0

    def close(self) -> None:
        self._client.close()
        self.state.ledger.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    # --- the report ---------------------------------------------------------------------------

    def report_new(self) -> int:
        """Log `run.dry_run` for every drop version not reported yet; returns how many."""
        reported = 0
        for d in self.state.ledger.in_state(*REPORTED_STATES):
            key = (d.id, d.fingerprint)
            if key in self._reported:
                continue
            self._reported.add(key)
            fields = self.describe(d)
            if fields is not None:
                log.info("run.dry_run", **fields)
                reported += 1
        return reported

    def describe(self, d: Drop) -> dict[str, Any] | None:
        """The fields of a drop's `run.dry_run` line: the exact request, or the upload plan."""
        rule = self.state.rules.get(d.rule)
        if rule is None:
            return None
        fields: dict[str, Any] = {"rule": d.rule, "drop": d.drop, "drop_id": d.id}
        try:
            output_dir = output_dir_for(rule, d.drop, now=datetime.now(UTC))
        except ValueError as exc:
            return {**fields, "error": str(exc), "would": "reject the drop"}
        call = run_call(
            rule,
            drop_id=d.id,
            deployment_id=rule.deployment_id,
            input_dir=d.input_dir,
            batch_id=d.batch_id,
            output_dir=output_dir,
        )
        request = call.request()
        fields.update(deployment_id=rule.deployment_id, method=request.method, path=request.path)
        fields["body"] = request.body
        schedule = opening_note(rule.active_hours, datetime.now(UTC))
        if schedule is not None:
            fields["schedule"] = schedule  # the daemon would hold it `ready` until then
        if d.state is DropState.UPLOADING:
            files = self.state.ledger.stages.files_of(d.id)
            plan = upload_plan(rule, drop=d.drop, drop_id=d.id, files=files)
            fields["upload"] = plan.as_dict(max_files=LOGGED_FILES)
            fields["note"] = "the body also gets the batch_id of the new batch"
        elif d.state is DropState.WAITING_REMOTE:
            fields["note"] = "posted once AI Hub sees every file (the remote check is not run)"
        return fields
