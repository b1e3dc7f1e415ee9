"""Intake: a complete drop from the detector becomes a `ready` ledger row, once.

Imports the pipeline's state, the ledger and the core; never detect (it meets us in `model`).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import structlog

from watcher.config import Rule, input_dir_for
from watcher.errors import LedgerUnavailableError
from watcher.ledger.transitions import BEFORE_SUBMIT
from watcher.model import TERMINAL, Drop, DropFile, DropState, ReadyDrop
from watcher.pipeline.state import PipelineState

log = structlog.get_logger("watcher.pipeline")

# A stat of a watch root taking longer than this (a hung NFS/SMB mount) is given up.
FS_TIMEOUT_S = 10.0


class Intake:
    """Records ready drops; drops that become ready in one loop turn share one transaction."""

    def __init__(self, state: PipelineState) -> None:
        self._state = state
        self._pending: list[ReadyDrop] = []
        self._stat_pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # (drop id, fingerprint) pairs already warned about, so a changed drop warns once.
        self._change_warned: set[tuple[str, str]] = set()

    def load_known(self) -> None:
        """Startup: every live ledger row is known, so the detector skips what is recorded."""
        active = self._state.ledger.active_drops()
        self._state.known.update((d.rule, d.drop) for d in active)
        for rule_name in sorted({d.rule for d in active} - set(self._state.rules)):
            log.warning(
                "rule.missing",
                rule=rule_name,
                hint="drops of this rule are in the ledger but the rule is not in the config",
            )

    def is_known(self, rule: str, drop: str) -> bool:
        """True when the ledger has a live row for this drop (safe from any thread)."""
        return (rule, drop) in self._state.known

    async def on_ready(self, ready: ReadyDrop) -> None:
        """A complete drop from the detector: record it; the submit loop takes it from here."""
        rule = self._state.rules.get(ready.rule)
        if rule is None:
            return
        self._note_root(rule.watch)
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(ready)
        self._state.known.add((ready.rule, ready.drop))

    def flush(self) -> None:
        """Write every pending ready drop in one transaction, then wake the submit loop."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            with self._state.ledger.batch():
                # One order on every host: two hosts recording the same drops at once on a
                # shared ledger then wait for each other instead of deadlocking.
                ordered = sorted(pending, key=lambda r: (r.rule, r.drop))
                live = self._live_rows(ordered)
                for ready in ordered:
                    try:
                        self._record(ready, live)
                    except LedgerUnavailableError:
                        raise  # the database is away, not this drop at fault: the daemon holds
                    except Exception as exc:
                        # One bad drop must never cost the others their place in this batch.
                        self._record_failed(ready, exc)
        except LedgerUnavailableError:
            # The daemon holds, then starts afresh: its first scan hands these over again.
            self._state.known.difference_update((r.rule, r.drop) for r in pending)
            raise
        except Exception as exc:
            # The transaction did not commit (disk full, read-only, I/O error): none of these
            # rows exists, so none may stay known, or the next scans would never hand it over.
            for ready in pending:
                self._record_failed(ready, exc)
            return
        self._state.wake_submit.set()

    def _live_rows(self, pending: list[ReadyDrop]) -> dict[tuple[str, str], Drop | None]:
        """The live row of each pending drop (None: none), read at once, not drop by drop."""
        # A name AI Hub cannot take is not even a valid query parameter (not UTF-8).
        keys = [(r.rule, r.drop) for r in pending if name_problem(r.drop) is None]
        live: dict[tuple[str, str], Drop | None] = dict.fromkeys(keys)
        live.update(self._state.ledger.find_active_many(keys))
        return live

    def _record(self, ready: ReadyDrop, live: dict[tuple[str, str], Drop | None]) -> None:
        state = self._state
        rule = state.rules[ready.rule]
        problem = name_problem(ready.drop)
        if problem is not None:
            self._reject_name(ready, problem)
            return
        fingerprint = ready.scan.fingerprint()
        # Read before the batch; a drop handed over twice in one batch reads its row again.
        key = (ready.rule, ready.drop)
        existing = live.pop(key) if key in live else state.ledger.find_active(*key)
        fields = {"rule": ready.rule, "drop": ready.drop}
        stage = first_stage(rule)
        files = _files(ready) if stage is not DropState.READY else ()
        if rule.source == "upload" and ready.scan.skipped:
            # Never followed, never uploaded: a link may lead anywhere on this machine.
            log.warning("upload.skipped", **fields, names=list(ready.scan.skipped)[:20])
        if existing is None:
            self._record_new(ready, rule, fingerprint, stage, files)
            return
        if existing.fingerprint == fingerprint:
            return
        if existing.state in BEFORE_SUBMIT:
            state.ledger.update_fingerprint(existing.id, fingerprint, files=files)
            log.info("drop.updated", **fields, drop_id=existing.id, fingerprint=fingerprint[:16])
            state.wake_stages.set()
            return
        if rule.on_change == "resubmit" and existing.state in TERMINAL:
            drop = state.ledger.resubmit(existing.id, fingerprint, state=stage, files=files)
            log.info("drop.resubmit", **fields, drop_id=drop.id, previous_drop_id=existing.id)
            state.wake_stages.set()
            return
        if (existing.id, fingerprint) not in self._change_warned:
            self._change_warned.add((existing.id, fingerprint))
            log.warning(
                "drop.changed_after_submit",
                **fields,
                drop_id=existing.id,
                state=str(existing.state),
                on_change=rule.on_change,
                hint="not resubmitted; set on_change: resubmit on the rule to run changed drops",
            )

    def _record_new(
        self,
        ready: ReadyDrop,
        rule: Rule,
        fingerprint: str,
        stage: DropState,
        files: tuple[DropFile, ...],
    ) -> None:
        state = self._state
        drop = state.ledger.record_ready(
            rule=rule.name,
            drop=ready.drop,
            fingerprint=fingerprint,
            input_dir=input_dir_for(rule, ready.drop) if rule.source == "drive" else None,
            deployment_id=rule.deployment_id,
            local_path=str(rule.watch / ready.drop),
            marker_path=str(ready.marker) if ready.marker is not None else None,
            state=stage,
            files=files,
        )
        log.info(
            "drop.ready",
            rule=rule.name,
            drop=ready.drop,
            drop_id=drop.id,
            state=str(drop.state),
            files=len(ready.scan.files),
            bytes=ready.scan.total_bytes(),
            input_dir=drop.input_dir,
            fingerprint=fingerprint[:16],
        )
        if stage is not DropState.READY:
            state.wake_stages.set()

    def _reject_name(self, ready: ReadyDrop, problem: str) -> None:
        """Record the drop `rejected` under its escaped name, once, and say why."""
        state = self._state
        shown = escaped(ready.drop)
        if state.ledger.find_active(ready.rule, shown) is not None:
            return
        rule = state.rules[ready.rule]
        drop = state.ledger.record_ready(
            rule=rule.name,
            drop=shown,
            fingerprint=ready.scan.fingerprint(),
            input_dir=input_dir_for(rule, shown),
            deployment_id=rule.deployment_id,
        )
        state.ledger.mark_rejected(drop.id, error=problem, response=None, now=time.time())
        log.error("drop.rejected", rule=rule.name, drop=shown, drop_id=drop.id, error=problem)

    def _record_failed(self, ready: ReadyDrop, exc: Exception) -> None:
        # Not known any more, so the next scan hands it over again.
        self._state.known.discard((ready.rule, ready.drop))
        log.error(
            "drop.record_failed",
            rule=ready.rule,
            drop=escaped(ready.drop),
            error=repr(exc),
            exc_info=exc,
        )

    def _note_root(self, watch: Path) -> None:
        """Remember the watch root's device (on a thread: a hung mount must not stall us)."""
        key = str(watch)
        if key in self._state.root_dev or key in self._stat_pending:
            return
        self._stat_pending.add(key)
        task = asyncio.get_running_loop().create_task(self._stat_root(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stat_root(self, key: str) -> None:
        try:
            async with asyncio.timeout(FS_TIMEOUT_S):
                st = await asyncio.to_thread(os.stat, key)
        except (OSError, TimeoutError):
            return
        finally:
            self._stat_pending.discard(key)
        self._state.root_dev.setdefault(key, st.st_dev)


def first_stage(rule: Rule) -> DropState:
    """Where a new drop of this rule starts: uploading, waiting for its remote copy, or ready."""
    if rule.source == "upload":
        return DropState.UPLOADING
    if rule.verify_remote:
        return DropState.WAITING_REMOTE
    return DropState.READY


def _files(ready: ReadyDrop) -> tuple[DropFile, ...]:
    return tuple(DropFile(rel=f.rel, size=f.size, mtime_ns=f.mtime_ns) for f in ready.scan.files)


def name_problem(drop: str) -> str | None:
    """Why AI Hub could not take this drop path, or None."""
    try:
        drop.encode("utf-8")
    except UnicodeEncodeError:
        return "the folder name is not valid UTF-8 (AI Hub paths are UTF-8): rename it"
    return None


def escaped(drop: str) -> str:
    """A printable, UTF-8 form of a name read from disk: undecodable bytes as \\xNN."""
    return drop.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
