"""The remote check: a drive drop is posted only once AI Hub sees every file with its local size.

A synced drive lags (a sync client, an rclone write-back cache): the local folder settles long
before the remote copy is whole. Each file is checked with HEAD /v2/files/{input_dir}/{rel};
404 means "not yet". Imports the pipeline's parts below it, the hub adapter and the ledger.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from watcher.hub.errors import HubAuthError, HubError
from watcher.hub.models import FileMetadata
from watcher.model import Drop, DropFile, DropState
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.claims import guarded
from watcher.pipeline.gate import Gate
from watcher.pipeline.state import BEAT_S, PipelineState

log = structlog.get_logger("watcher.pipeline")

# Re-check back-off: from FIRST_CHECK_S, doubling, at most MAX_CHECK_S ("about 30 s at most").
FIRST_CHECK_S = 1.0
MAX_CHECK_S = 30.0
# HEAD requests in flight at once, over all drops.
MAX_HEADS_IN_FLIGHT = 8
# How many missing files a log line or `status` names.
NAMED_AT_MOST = 10


@dataclass(slots=True)
class _Waiting:
    """What the check knows of one drop between passes (kept in memory: a restart re-checks)."""

    seen: set[tuple[str, int]] = field(default_factory=set)  # (rel, size) confirmed remotely
    next_at: float = 0.0
    delay_s: float = FIRST_CHECK_S
    last_missing: str | None = None
    timed_out: bool = False


class RemoteCheck:
    """Moves `waiting_remote` drops to `ready` once their remote copy is whole."""

    def __init__(self, state: PipelineState, *, calls: HubCalls, gate: Gate) -> None:
        self._state = state
        self._calls = calls
        self._gate = gate
        self._heads = asyncio.Semaphore(MAX_HEADS_IN_FLIGHT)
        self._waiting: dict[str, _Waiting] = {}

    async def run(self) -> None:
        state = self._state
        while not state.stopping:
            state.beat("remote")
            if not await self._gate.wait_unpaused(BEAT_S):
                continue
            now = time.monotonic()
            drops = state.ledger.take(DropState.WAITING_REMOTE)
            live = {d.id for d in drops}
            for gone in set(self._waiting) - live:
                del self._waiting[gone]
            due = [d for d in drops if self._waiting.setdefault(d.id, _Waiting()).next_at <= now]
            if due:
                await asyncio.gather(*(guarded(self.check(d)) for d in due))
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        wake = self._state.wake_stages
        later = [w.next_at for w in self._waiting.values()]
        timeout = BEAT_S if not later else max(0.0, min(min(later) - time.monotonic(), BEAT_S))
        wake.clear()
        try:
            async with asyncio.timeout(timeout):
                await wake.wait()
        except TimeoutError:
            pass

    async def check(self, d: Drop) -> None:
        """One pass over the files of `d` not yet seen remotely."""
        waiting = self._waiting.setdefault(d.id, _Waiting())
        files = self._state.ledger.stages.files_of(d.id)
        todo = [f for f in files if (f.rel, f.size) not in waiting.seen]
        try:
            answers = await asyncio.gather(*(self._head(d, f) for f in todo))
        except HubAuthError as exc:
            self._gate.pause(str(exc), exc.http_status)
            return
        problems: list[str] = []
        for f, answer in zip(todo, answers, strict=True):
            problem = _problem(f, answer)
            if problem is None:
                waiting.seen.add((f.rel, f.size))
            else:
                problems.append(problem)
        if not problems:
            self._verified(d, len(files))
            return
        self._still_waiting(d, waiting, problems, len(files))

    async def _head(self, d: Drop, f: DropFile) -> FileMetadata | HubError | None:
        path = f"{d.input_dir}/{f.rel}"
        async with self._heads:
            try:
                return await self._calls.call(lambda c: c.file_metadata(path))
            except HubAuthError:
                raise
            except HubError as exc:
                return exc

    def _verified(self, d: Drop, files: int) -> None:
        self._waiting.pop(d.id, None)
        self._state.ledger.stages.remote_checked(d.id, missing=None, now=time.time())
        log.info(
            "remote.verified",
            rule=d.rule,
            drop=d.drop,
            drop_id=d.id,
            files=files,
            waited_s=round(time.time() - d.created_at, 3),
        )
        self._state.wake_submit.set()

    def _still_waiting(self, d: Drop, w: _Waiting, problems: list[str], files: int) -> None:
        missing = _describe(problems, files)
        fields = {"rule": d.rule, "drop": d.drop, "drop_id": d.id}
        if missing != w.last_missing:
            w.last_missing = missing
            self._state.ledger.stages.remote_checked(d.id, missing=missing, now=time.time())
            log.info("remote.waiting", **fields, missing=problems[:NAMED_AT_MOST], files=files)
        rule = self._state.rules.get(d.rule)
        limit = rule.verify_timeout_seconds if rule is not None else None
        if limit is not None and not w.timed_out and time.time() - d.created_at >= limit:
            # Said once; the check goes on: never submit early, never give a drop up silently.
            w.timed_out = True
            log.error(
                "remote.timed_out",
                **fields,
                waited_s=round(time.time() - d.created_at),
                missing=problems[:NAMED_AT_MOST],
                more=max(0, len(problems) - NAMED_AT_MOST),
                hint="is the sync client running? the drop is submitted once every file is there",
            )
        w.next_at = time.monotonic() + w.delay_s
        w.delay_s = min(MAX_CHECK_S, w.delay_s * 2)


def _problem(f: DropFile, answer: FileMetadata | HubError | None) -> str | None:
    """Why this file does not count as synced yet, or None when it does."""
    if isinstance(answer, HubError):
        return f"{f.rel} (not checked: {answer})"
    if answer is None:
        return f"{f.rel} (missing)"
    if answer.is_folder:
        return f"{f.rel} (a folder on the remote side)"
    if answer.size != f.size:
        return f"{f.rel} (local {f.size} B, remote {answer.size} B)"
    return None


def _describe(problems: list[str], files: int) -> str:
    """The one-line reason `status` shows for a drop waiting for its remote copy."""
    named = ", ".join(problems[:NAMED_AT_MOST])
    more = len(problems) - NAMED_AT_MOST
    tail = f" and {more} more" if more > 0 else ""
    return (
        f"waiting for the remote copy: {len(problems)} of {files} files not synced: {named}{tail}"
    )
