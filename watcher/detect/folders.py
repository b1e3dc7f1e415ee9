"""Folder drops: each top-level folder settles on its own scans and is handed over once.

A poke marks a drop dirty and arms its timer; due drops go to one drainer task per rule that
scans them in batches off the loop. Imports fs, config and model; never pipeline, ledger or hub.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection

from watcher.detect import timing
from watcher.detect.state import Handover, RuleState, log
from watcher.fs.scan import ScanResult, scan_drops
from watcher.fs.settle import Decision, SettleTracker
from watcher.model import Scan

_MISSING = object()


class PendingDrop:
    """A drop being settled (or re-checked after an event)."""

    __slots__ = (
        "burst_started",
        "busy",
        "last_event",
        "name",
        "poked",
        "reason",
        "seen",
        "timer",
        "tracker",
    )

    def __init__(self, name: str, tracker: SettleTracker) -> None:
        self.name = name
        self.tracker = tracker
        self.timer: asyncio.TimerHandle | None = None
        self.burst_started: float | None = None
        self.busy = False  # queued for a scan, or being scanned
        self.poked = False  # an event arrived while it was queued or being scanned
        self.last_event: float | None = None  # loop time of the last observer event for it
        self.seen = False  # a scan has found the folder at least once
        self.reason = ""


class FolderDrops:
    """One rule's drops being settled: their timers, the scan queue and its one drainer."""

    def __init__(self, state: RuleState) -> None:
        self._state = state
        self.pending: dict[str, PendingDrop] = {}
        self.scan_queue: deque[PendingDrop] = deque()  # due drops, oldest first
        self.scan_wake = asyncio.Event()  # set when scan_queue gains an entry
        self.drainer: asyncio.Task[None] | None = None
        # "log once" memories, pruned as names disappear.
        self.unreadable: set[str] = set()
        self.skipped_logged: set[str] = set()

    def poke(self, name: str, *, delay: float, event_at: float | None = None) -> None:
        """Mark a drop dirty: scan it after `delay` (later events in a burst push it back).

        `event_at`: the loop time an observer event for it arrived (settling counts from it).
        """
        state = self._state
        if state.closed:
            return
        p = self.pending.get(name)
        if p is None:
            tracker = SettleTracker(
                settle_seconds=state.rule.settle_seconds,
                marker_required=state.marker is not None,
                max_backoff_s=timing.MAX_BLOCKED_RECHECK_S,
            )
            p = self.pending[name] = PendingDrop(name, tracker)
        if event_at is not None:
            p.last_event = event_at
        if p.busy:
            p.poked = True
            return
        now = state.loop.time()
        if p.burst_started is None:
            p.burst_started = now
        at = min(now + delay, p.burst_started + max(state.rule.settle_seconds, delay))
        self._arm(p, at)

    def prune(self, dirs: Collection[str]) -> None:
        """A root listing without some names: pending ones get scanned (and so found vanished)."""
        for name in [n for n in self.pending if n not in dirs]:
            self.poke(name, delay=0.0)  # its own scan reports it as vanished
        self.skipped_logged.intersection_update(dirs)
        self.unreadable.intersection_update(dirs)

    def cancel_timers(self) -> None:
        for p in self.pending.values():
            if p.timer is not None:
                p.timer.cancel()
                p.timer = None

    def _arm(self, p: PendingDrop, at: float) -> None:
        if p.timer is not None:
            p.timer.cancel()
        p.timer = self._state.loop.call_at(at, self._fire, p)

    def _fire(self, p: PendingDrop) -> None:
        p.timer = None
        p.burst_started = None
        if self._state.closed or self.pending.get(p.name) is not p or p.busy:
            return
        p.busy = True
        self.scan_queue.append(p)
        self.scan_wake.set()
        if self.drainer is None or self.drainer.done():
            self.drainer = self._state.spawn(self._drain())

    async def _drain(self) -> None:
        """The rule's scanner: due drops, up to SCAN_BATCH per worker-thread hop, until cancelled.

        Sleeps on `scan_wake` while nothing is due. Never ends on an error: a drop whose scan
        or decision failed is logged and re-armed, the others carry on.
        """
        state = self._state
        while not state.closed:
            if not self.scan_queue:
                self.scan_wake.clear()
                await self.scan_wake.wait()
                continue
            batch: list[PendingDrop] = []
            while self.scan_queue and len(batch) < timing.SCAN_BATCH:
                p = self.scan_queue.popleft()
                if self.pending.get(p.name) is p:
                    batch.append(p)
                else:
                    p.busy = False  # forgotten while queued
            if not batch:
                continue
            try:
                await self._scan_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug; keep detecting rather than die
                log.exception("detect.error", rule=state.rule.name, error=repr(exc))
                for p in batch:
                    self._scan_failed(p)
                await asyncio.sleep(timing.ERROR_DELAY_S)

    async def _scan_batch(self, batch: list[PendingDrop]) -> None:
        state = self._state
        rule = state.rule
        names = tuple(p.name for p in batch)
        results: list[ScanResult]
        try:
            results = await asyncio.to_thread(
                scan_drops, state.root, names, rule.ignore, state.marker
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            results = [exc] * len(batch)
        handover: list[Handover] = []
        for p, result in zip(batch, results, strict=True):
            try:
                item = self._after_scan(p, result)
            except Exception as exc:  # a bug in one drop's decision must not stop the others
                log.exception("detect.error", rule=rule.name, drop=p.name, error=repr(exc))
                self._scan_failed(p)
                continue
            if item is not None:
                handover.append(item)
        if handover:
            # Emitted from one task per batch: the pipeline records them in one transaction, and
            # a slow emit never holds up the next scans.
            state.spawn(state.hand_over_many(handover))

    def _scan_failed(self, p: PendingDrop) -> None:
        """Re-check a drop whose scan or decision failed, after a pause."""
        state = self._state
        p.busy = False
        p.poked = False
        if not state.closed and self.pending.get(p.name) is p and p.timer is None:
            delay = max(state.rule.settle_seconds, timing.ERROR_DELAY_S)
            self._arm(p, state.loop.time() + delay)

    def _after_scan(self, p: PendingDrop, result: ScanResult) -> Handover | None:
        """Judge one drop's scan, on the loop; returns what to hand over, if it is ready."""
        state = self._state
        if isinstance(result, BaseException):
            log.error(
                "detect.error",
                rule=state.rule.name,
                drop=p.name,
                error=repr(result),
                exc_info=result,
            )
            self._scan_failed(p)
            return None
        p.busy = False
        if state.closed or self.pending.get(p.name) is not p:
            return None
        scan, marked = result
        if scan is None:
            self._vanished(p)
            return None
        if not p.seen:
            p.seen = True
            if p.name not in state.done:
                log.debug("drop.detected", rule=state.rule.name, drop=p.name)
        self._log_scan_problems(scan)
        decision = p.tracker.observe(
            scan, now=state.loop.time(), marked=marked, changed_at=p.last_event
        )
        if p.poked:
            # Something changed while it was queued or scanned: look again before deciding.
            p.poked = False
            self.poke(p.name, delay=timing.DEBOUNCE_S)
            return None
        return self._act_on(p, scan, marked, decision)

    def _act_on(
        self, p: PendingDrop, scan: Scan, marked: bool, decision: Decision
    ) -> Handover | None:
        """Park, keep settling, or take a ready drop out of `pending` (if it is new or changed)."""
        state = self._state
        rule = state.rule
        if decision.verdict == "blocked" and p.name in state.done:
            # Already handed over, and now incomplete (its marker removed after submission, or
            # a file being replaced): stop watching it; the next event or marker re-checks it.
            del self.pending[p.name]
            log.debug("drop.recheck_parked", rule=rule.name, drop=p.name, reason=decision.reason)
            return None
        if decision.verdict != "ready":
            if decision.reason != p.reason:
                p.reason = decision.reason
                log.debug(
                    "drop.settling",
                    rule=rule.name,
                    drop=p.name,
                    reason=decision.reason,
                    files=len(scan.files),
                    in_progress=len(scan.in_progress),
                    settle_seconds=rule.settle_seconds,
                )
            assert decision.check_at is not None
            self._arm(p, decision.check_at)
            return None
        del self.pending[p.name]
        fingerprint = scan.fingerprint()
        if state.done.get(p.name, _MISSING) == fingerprint:
            log.debug("drop.unchanged", rule=rule.name, drop=p.name)
            return None
        state.done[p.name] = fingerprint
        marker = rule.watch / f"{p.name}{state.marker}" if marked and state.marker else None
        return scan, marker, decision.reason

    def _vanished(self, p: PendingDrop) -> None:
        state = self._state
        del self.pending[p.name]
        was_done = state.done.pop(p.name, _MISSING) is not _MISSING
        self.unreadable.discard(p.name)
        self.skipped_logged.discard(p.name)
        if p.seen and not was_done:
            log.info("drop.vanished", rule=state.rule.name, drop=p.name)

    def _log_scan_problems(self, scan: Scan) -> None:
        rule = self._state.rule
        if scan.errors and scan.drop not in self.unreadable:
            self.unreadable.add(scan.drop)
            log.warning(
                "drop.unreadable",
                rule=rule.name,
                drop=scan.drop,
                errors=len(scan.errors),
                error=scan.errors[0],
                hint="not ready while unreadable",
            )
        elif not scan.errors:
            self.unreadable.discard(scan.drop)
        if scan.skipped and scan.drop not in self.skipped_logged:
            self.skipped_logged.add(scan.drop)
            log.debug(
                "drop.entries_skipped",
                rule=rule.name,
                drop=scan.drop,
                skipped=len(scan.skipped),
                first=scan.skipped[0],
                reason="symlinks and special files are never followed",
            )
