"""Upload: an `uploading` drop's files go into a new AI Hub batch, then it is `ready` to run.

Every step is recorded before the next (the batch id, then each file), so a kill -9 at any
point resumes the same batch: a PUT overwrites, so a file sent twice is harmless. Imports the
pipeline's parts below it, the hub adapter and the ledger.
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

import structlog

from watcher.config import Rule
from watcher.hub.errors import (
    HubAuthError,
    HubError,
    HubRejectedError,
    HubStatusError,
    UploadSourceError,
)
from watcher.hub.policy import backoff_delay_s
from watcher.model import Drop, DropFile, DropState
from watcher.pipeline import fsops
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.claims import guarded
from watcher.pipeline.failures import rule_gone_error
from watcher.pipeline.gate import Gate
from watcher.pipeline.naming import batch_name, remote_name
from watcher.pipeline.request import plan_problem
from watcher.pipeline.state import BEAT_S, PipelineState
from watcher.pipeline.transfer import send_file

log = structlog.get_logger("watcher.pipeline")

# Back-off between attempts of an upload that failed for a passing reason (5xx, network).
MAX_RETRY_S = 300.0
# Files of one drop sent at once (small files are latency-bound); parts of a big file go one
# after the other.
FILES_IN_FLIGHT = 4
# Uploaded files are recorded in the ledger in groups of this many (one fsync per group).
RECORD_EVERY = 32


class Uploader:
    """Fills one batch per `uploading` drop, a few drops at a time."""

    def __init__(self, state: PipelineState, *, calls: HubCalls, gate: Gate) -> None:
        self._state = state
        self._calls = calls
        self._gate = gate
        self._active: dict[str, asyncio.Task[None]] = {}
        self._retry_at: dict[str, tuple[int, float]] = {}  # drop id -> (failures, monotonic)

    async def run(self) -> None:
        state = self._state
        while not state.stopping:
            state.beat("upload")
            if await self._gate.wait_unpaused(BEAT_S):
                self._start_due()
            wake = state.wake_stages
            wake.clear()
            try:
                async with asyncio.timeout(BEAT_S):
                    await wake.wait()
            except TimeoutError:
                pass

    def _start_due(self) -> None:
        now = time.monotonic()
        slots = self._state.config.hub.max_concurrency - len(self._active)
        for d in self._state.ledger.take(DropState.UPLOADING):
            if slots <= 0:
                return
            if d.id in self._active or self._retry_at.get(d.id, (0, 0.0))[1] > now:
                continue
            task = asyncio.get_running_loop().create_task(
                guarded(self._upload(d)), name=f"upload {d.id}"
            )
            self._active[d.id] = task
            task.add_done_callback(functools.partial(self._done, d.id))
            slots -= 1

    def _done(self, drop_id: str, _task: asyncio.Task[None]) -> None:
        self._active.pop(drop_id, None)
        self._state.wake_stages.set()

    async def drain(self) -> None:
        """Shutdown: stop uploading; the ledger knows what was sent."""
        for task in list(self._active.values()):
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)

    async def _upload(self, d: Drop) -> None:
        rule = self._state.rules.get(d.rule)
        fields = {"rule": d.rule, "drop": d.drop, "drop_id": d.id}
        if rule is None:
            self._give_up(d, rule_gone_error(d.rule), fields, failed=True)
            return
        files = self._state.ledger.stages.files_of(d.id)
        problem = plan_problem(files, rule)
        if problem is not None:
            self._give_up(d, problem, fields, failed=False)
            return
        try:
            await self._fill(d, rule, files, fields)
        except HubAuthError as exc:
            self._gate.pause(str(exc), exc.http_status)
        except HubRejectedError as exc:
            self._rejected(d, exc, fields)
        except (HubError, UploadSourceError, OSError) as exc:
            # UploadSourceError: the file changed after detection; the detector sees the new
            # content and the drop starts over in a new batch.
            self._retry_later(d, exc, fields)

    async def _fill(
        self, d: Drop, rule: Rule, files: list[DropFile], fields: dict[str, str]
    ) -> None:
        stages, started = self._state.ledger.stages, time.monotonic()
        batch_id = d.batch_id
        if batch_id is None:
            name = batch_name(rule.name, d.drop, d.id)
            workspace = rule.upload.workspace
            batch = await self._calls.call(
                lambda c: c.batches.create_batch(name=name, workspace=workspace)
            )
            batch_id = batch.id
            stages.set_batch(d.id, batch_id=batch_id, now=time.time())
            log.info("upload.batch_created", **fields, batch_id=batch_id, files=len(files))
        root = fsops.local_path(d, rule)
        assert root is not None
        todo = [f for f in files if not f.uploaded]
        await _send_all(
            self._calls, rule, self._state, drop_id=d.id, batch_id=batch_id, root=root, files=todo
        )
        sent = sum(f.size for f in todo)
        stages.uploaded(d.id, now=time.time())
        self._retry_at.pop(d.id, None)
        took = max(time.monotonic() - started, 1e-6)
        log.info(
            "upload.done",
            **fields,
            batch_id=batch_id,
            files=len(files),
            bytes=sent,
            seconds=round(took, 3),
            mb_per_s=round(sent / took / 1e6, 1),
        )
        self._state.wake_submit.set()

    def _give_up(self, d: Drop, error: str, fields: dict[str, str], *, failed: bool) -> None:
        now = time.time()
        if failed:
            self._state.ledger.mark_failed(d.id, error=error, now=now)
        else:
            self._state.ledger.mark_rejected(d.id, error=error, response=None, now=now)
        log.error("drop.rejected" if not failed else "submit.gave_up", **fields, error=error)

    def _rejected(self, d: Drop, exc: HubRejectedError, fields: dict[str, str]) -> None:
        if exc.http_status == 404 and d.batch_id is not None:
            # The batch is gone (deleted by someone): start over in a new one.
            self._state.ledger.stages.set_batch(d.id, batch_id=None, now=time.time())
            log.warning("upload.batch_gone", **fields, batch_id=d.batch_id)
            return
        self._give_up(d, str(exc), fields, failed=False)

    def _retry_later(self, d: Drop, exc: Exception, fields: dict[str, str]) -> None:
        failures = self._retry_at.get(d.id, (0, 0.0))[0] + 1
        delay = backoff_delay_s(failures, base_s=2.0, cap_s=MAX_RETRY_S)
        self._retry_at[d.id] = (failures, time.monotonic() + delay)
        http_status = exc.http_status if isinstance(exc, HubStatusError) else None
        error = str(exc)
        self._state.ledger.stages.upload_note(d.id, error=f"upload waits: {error}", now=time.time())
        log.warning(
            "upload.retry",
            **fields,
            http_status=http_status,
            failures=failures,
            retry_in_s=round(delay, 3),
            error=error,
        )


async def _send_all(
    calls: HubCalls,
    rule: Rule,
    state: PipelineState,
    *,
    drop_id: str,
    batch_id: int,
    root: Path,
    files: list[DropFile],
) -> None:
    """Send `files`, a few at a time, recording them as done in groups: one fsync per group,
    not per file. A file sent but not yet recorded when the process dies is sent again after
    the restart, which is harmless: a PUT overwrites."""
    done: list[str] = []
    in_flight = asyncio.Semaphore(FILES_IN_FLIGHT)

    def record() -> None:
        marks, done[:] = list(done), []
        with state.ledger.batch():
            for rel in marks:
                state.ledger.stages.file_uploaded(drop_id, rel, now=time.time())

    async def one(f: DropFile) -> None:
        async with in_flight:
            await send_file(
                calls,
                rule,
                batch_id=batch_id,
                path=root / f.rel,
                name=remote_name(f.rel),
                size=f.size,
            )
        done.append(f.rel)
        state.metrics.uploaded(rule.name, f.size)
        if len(done) >= RECORD_EVERY:
            record()

    try:
        async with asyncio.TaskGroup() as group:
            for f in files:
                group.create_task(one(f))
    except BaseExceptionGroup as eg:
        record()  # what was sent before the failure stays sent
        raise eg.exceptions[0] from None
    record()
