"""Completed-drop detection: observer hints + directory scans -> one `ReadyDrop` per complete drop.

Service layer on the daemon's asyncio loop. Imports settle, scan, fswatch, config and rules;
never the hub client or the ledger (it asks `is_known` instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from watcher.config import Rule, render_template
from watcher.fswatch import OBSERVERS, Bridge, FsWatch, HintKind, PollingWatch, is_watch_limit
from watcher.model import ReadyDrop, Scan
from watcher.scan import (
    Batch,
    RootListing,
    list_root,
    move_into_batch,
    place_batch,
    root_identity,
    scan_drop,
)
from watcher.settle import GroupTracker, SettleTracker, is_in_progress

log = structlog.get_logger("watcher.detect")

# How often an attached watch folder is checked for being deleted, replaced or unmounted, and
# how often a missing one is looked for. A stat every 2 s costs nothing measurable.
ROOT_CHECK_S = 2.0
# After an event, wait this long for the burst to end before scanning (never longer than
# settle_seconds in total, so a steady trickle of events cannot postpone scans for ever). It
# does not delay readiness: the settle window counts from the event, not from the scan.
DEBOUNCE_S = 0.05
# Due drops are scanned by one drainer task per rule, up to this many per worker-thread hop:
# a hop costs milliseconds on a busy loop, a small drop's scan well under one.
SCAN_BATCH = 64
# A stable but incomplete drop (empty, in progress, unreadable) is re-checked at most this far
# apart; events poke it sooner.
MAX_BLOCKED_RECHECK_S = 60.0
# After an unexpected error in a rule's task, pause this long before carrying on.
ERROR_DELAY_S = 1.0

IsKnown = Callable[[str, str], bool]
# One drop's scan from a worker thread: (scan or None when gone, marker present), or its error.
_ScanResult = tuple[Scan | None, bool] | Exception
Emit = Callable[[ReadyDrop], Awaitable[None]]
_MISSING = object()


class _RootGone(Exception):
    """The watch folder was deleted, replaced or became unreadable: detach and wait for it."""


class _Reattach(Exception):
    """Restart the rule's watch (observer died, or switching to polling)."""


class _Pending:
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


class _RuleWatch:
    """Everything the detector knows about one rule. Touched only on the loop thread."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.files_mode = rule.drop == "files"
        self.marker = rule.ready_marker if not self.files_mode else None
        self.root = os.path.abspath(rule.watch)
        self.identity: tuple[int, int] | None = None
        self.fsw: FsWatch | None = None
        self.bridge: Bridge | None = None
        self.force_polling = False
        self.pending: dict[str, _Pending] = {}
        # Drops emitted (fingerprint) or known to the ledger at startup (None): not deep-scanned
        # on rescans; an event makes them re-checked, and re-emitted only if they changed.
        self.done: dict[str, str | None] = {}
        self.accepted: set[str] = set()  # files mode: sub-folders that are drops
        self.group = GroupTracker(settle_seconds=rule.settle_seconds, max_files=rule.max_files)
        self.group_timer: asyncio.TimerHandle | None = None
        self.group_burst: float | None = None
        self.top_dirs: dict[str, int] = {}
        self.top_files: set[str] = set()
        self.seq = 0
        self.wake = asyncio.Event()
        self.flags: set[str] = set()  # "full", "root", "gone", "limit"
        self.full_waiters: list[asyncio.Future[None]] = []
        self.first_attempt = asyncio.Event()
        self.missing_warned = False
        self.task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.scan_queue: deque[_Pending] = deque()  # due drops, oldest first
        self.scan_wake = asyncio.Event()  # set when scan_queue gains an entry
        self.drainer: asyncio.Task[None] | None = None
        self.closed = False
        # "log once" memories, pruned as names disappear.
        self.quiet_top: set[str] = set()
        self.unreadable: set[str] = set()
        self.skipped_logged: set[str] = set()

    def request(self, flag: str) -> None:
        self.flags.add(flag)
        self.wake.set()

    def resolve_waiters(self) -> None:
        waiters, self.full_waiters = self.full_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def cancel_timers(self) -> None:
        for p in self.pending.values():
            if p.timer is not None:
                p.timer.cancel()
                p.timer = None
        if self.group_timer is not None:
            self.group_timer.cancel()
            self.group_timer = None


class Detector:
    """Finds complete drops for a set of rules and hands each to `emit`, once.

    Observer events only mark drops dirty; scans decide. Startup and every `rescan_seconds` the
    watch roots are listed (one lstat per top-level entry); only drops not yet emitted or known
    to the ledger are walked.
    """

    def __init__(self, rules: Sequence[Rule], *, is_known: IsKnown) -> None:
        """`is_known(rule, drop)`: the ledger has an active (non-archived) row for the drop."""
        self._rules: dict[str, Rule] = {r.name: r for r in rules}
        self._is_known = is_known
        self._watches: dict[str, _RuleWatch] = {}
        self._rule_tasks: set[asyncio.Task[None]] = set()  # incl. stopped rules still cleaning up
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: Emit | None = None
        self.startup_scan_done = asyncio.Event()

    # --- public API -------------------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        """Watch every rule until cancelled: start observers, full scan, then serve.

        `startup_scan_done` is set once every rule has been listed (or found missing). On
        cancellation every observer is stopped and joined.
        """
        if self._loop is not None:
            raise RuntimeError("Detector.run() is already running")
        self._loop = asyncio.get_running_loop()
        self._emit = emit
        try:
            for rule in self._rules.values():
                self._start_rule(rule, previous=None)
            while True:
                firsts = [rw.first_attempt.wait() for rw in self._watches.values()]
                await asyncio.gather(*firsts)
                if all(rw.first_attempt.is_set() for rw in self._watches.values()):
                    break
            self.startup_scan_done.set()
            await asyncio.Event().wait()
        finally:
            for rw in self._watches.values():
                rw.closed = True
            tasks = list(self._rule_tasks)
            for task in tasks:
                task.cancel()
            # Each rule task stops and joins its observer on the way out: no thread outlives run().
            await asyncio.gather(*tasks, return_exceptions=True)
            self._watches.clear()
            self._loop = None

    def update_rules(self, rules: Sequence[Rule]) -> None:
        """Hot reload: start new rules, stop removed ones, restart changed ones (loop thread)."""
        new = {r.name: r for r in rules}
        old, self._rules = self._rules, new
        if self._loop is None:
            return
        for name in old.keys() - new.keys():
            rw = self._watches.pop(name, None)
            if rw is not None:
                self._stop_rule(rw)
                log.info("watch.stopped", rule=name)
        for name, rule in new.items():
            rw = self._watches.get(name)
            if rw is None:
                self._start_rule(rule, previous=None)
            elif rw.rule != rule:
                self._stop_rule(rw)
                self._start_rule(rule, previous=rw.task)

    def forget(self, rule: str, drop: str) -> None:
        """Drop the memory of a drop whose folder was moved away or deleted after its run."""
        rw = self._watches.get(rule)
        if rw is not None:
            rw.done.pop(drop, None)
            rw.accepted.discard(drop)

    async def rescan_all(self) -> None:
        """List every attached watch root now and wait until each rescan is done."""
        if self._loop is None:
            return
        waits: list[asyncio.Future[None]] = []
        for rw in self._watches.values():
            if rw.fsw is not None and not rw.closed:
                fut = self._loop.create_future()
                rw.full_waiters.append(fut)
                rw.request("full")
                waits.append(fut)
        if waits:
            await asyncio.gather(*waits)

    # --- per-rule supervision ---------------------------------------------------------------

    def _start_rule(self, rule: Rule, *, previous: asyncio.Task[None] | None) -> None:
        assert self._loop is not None
        rw = _RuleWatch(rule)
        self._watches[rule.name] = rw
        rw.task = self._loop.create_task(self._serve_rule(rw, previous), name=f"detect:{rule.name}")
        self._rule_tasks.add(rw.task)
        rw.task.add_done_callback(self._rule_tasks.discard)

    def _stop_rule(self, rw: _RuleWatch) -> None:
        rw.closed = True
        if rw.task is not None:
            rw.task.cancel()

    async def _serve_rule(self, rw: _RuleWatch, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            # A restarted rule: let the old observer stop before watching the same folder again.
            # (asyncio.wait: the old task's outcome is not ours, but our own cancellation is.)
            await asyncio.wait([previous])
        assert self._loop is not None
        loop = self._loop
        failures = 0
        try:
            while not rw.closed:
                attached_at: float | None = None
                try:
                    await self._attach(rw)
                    attached_at = loop.time()
                    await self._serve_attached(rw)
                except _RootGone as exc:
                    log.debug("watch.detached", rule=rw.rule.name, reason=str(exc))
                except _Reattach:
                    pass
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("detect.error", rule=rw.rule.name, error=repr(exc))
                finally:
                    await self._detach(rw)
                # Re-attach at once after a healthy spell; back off while attaching keeps failing.
                healthy = attached_at is not None and loop.time() - attached_at > 30.0
                failures = 0 if healthy else failures + 1
                if failures:
                    await asyncio.sleep(min(30.0, ERROR_DELAY_S / 2 * 2 ** (failures - 1)))
        finally:
            rw.closed = True
            rw.cancel_timers()
            rw.resolve_waiters()
            rw.first_attempt.set()
            tasks = list(rw.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _attach(self, rw: _RuleWatch) -> None:
        rule = rw.rule
        while True:
            try:
                rw.identity = await asyncio.to_thread(root_identity, str(rule.watch))
                break
            except OSError as exc:
                if not rw.missing_warned:
                    log.warning(
                        "watch.missing",
                        rule=rule.name,
                        watch=str(rule.watch),
                        error=repr(exc),
                        retry_seconds=ROOT_CHECK_S,
                    )
                    rw.missing_warned = True
                rw.first_attempt.set()
                rw.resolve_waiters()
                await asyncio.sleep(ROOT_CHECK_S)
        rw.missing_warned = False
        rw.root = os.path.realpath(rule.watch)
        mode = "polling" if rw.force_polling else rule.observer
        assert self._loop is not None
        bridge = Bridge(self._loop, functools.partial(self._on_hint, rw))
        fsw = self._make_watch(rw, mode, bridge)
        try:
            await asyncio.to_thread(fsw.start)
        except OSError as exc:
            bridge.close()
            if not is_watch_limit(exc) or mode == "polling":
                raise _RootGone(repr(exc)) from exc
            self._fall_back(rw, exc)
            mode = "polling"
            bridge = Bridge(self._loop, functools.partial(self._on_hint, rw))
            fsw = self._make_watch(rw, mode, bridge)
        rw.fsw, rw.bridge = fsw, bridge
        log.info("watch.attached", rule=rule.name, watch=str(rule.watch), observer=mode)
        await self._root_pass(rw, full=True, attach=True)
        rw.first_attempt.set()

    def _make_watch(self, rw: _RuleWatch, mode: str, bridge: Bridge) -> FsWatch:
        factory = OBSERVERS.get(mode, PollingWatch)
        return factory(
            rw.root,
            send=bridge.send,
            files_mode=rw.files_mode,
            marker=rw.marker,
            poll_interval_seconds=rw.rule.poll_interval_seconds,
        )

    def _fall_back(self, rw: _RuleWatch, exc: BaseException | None) -> None:
        rw.force_polling = True
        log.warning(
            "watch.fallback_polling",
            rule=rw.rule.name,
            watch=str(rw.rule.watch),
            error=repr(exc) if exc is not None else "inotify watch limit reached",
            poll_interval_seconds=rw.rule.poll_interval_seconds,
            hint="raise fs.inotify.max_user_watches (sysctl) to get events back",
        )

    async def _detach(self, rw: _RuleWatch) -> None:
        fsw, rw.fsw = rw.fsw, None
        if rw.bridge is not None:
            rw.bridge.close()
            rw.bridge = None
        rw.resolve_waiters()
        if fsw is None:
            return
        try:
            await asyncio.to_thread(fsw.stop)
        except asyncio.CancelledError:
            fsw.stop()  # make sure no observer thread outlives us
            raise

    async def _serve_attached(self, rw: _RuleWatch) -> None:
        assert self._loop is not None and rw.fsw is not None
        loop = self._loop
        rule = rw.rule
        polling = rw.fsw.needs_polling
        now = loop.time()
        next_full = now + rule.rescan_seconds
        next_poll = now + rule.poll_interval_seconds if polling else float("inf")
        next_check = now + ROOT_CHECK_S if not polling else float("inf")
        while True:
            if not rw.flags:
                rw.wake.clear()
                timeout = max(0.0, min(next_full, next_poll, next_check) - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rw.wake.wait(), timeout)
            flags, rw.flags = rw.flags, set()
            now = loop.time()
            if "gone" in flags:
                raise _RootGone("watch folder deleted or moved")
            if "limit" in flags and not polling:
                self._fall_back(rw, None)
                raise _Reattach
            if "full" in flags or now >= next_full:
                await self._root_pass(rw, full=True)
                next_full = now + rule.rescan_seconds
                rw.resolve_waiters()
            elif "root" in flags or now >= next_poll:
                await self._root_pass(rw, full=False)
            if now >= next_poll:
                next_poll = now + rule.poll_interval_seconds
            if now >= next_check:
                next_check = now + ROOT_CHECK_S
                identity = await asyncio.to_thread(_identity_or_none, rw.root)
                if identity != rw.identity:
                    raise _RootGone("watch folder deleted, replaced or unmounted")
                if not rw.fsw.healthy():
                    log.warning("watch.observer_failed", rule=rule.name, watch=str(rule.watch))
                    raise _Reattach

    # --- hints from the observer thread (delivered on the loop) -----------------------------

    def _on_hint(self, rw: _RuleWatch, kind: HintKind, name: str) -> None:
        if rw.closed:
            return
        if kind == "drop":
            if is_in_progress(name, rw.rule.ignore):
                return
            if rw.files_mode and name not in rw.accepted:
                return  # not one of our batches (nor there at startup): not a drop
            assert self._loop is not None
            self._poke(rw, name, delay=DEBOUNCE_S, event_at=self._loop.time())
        elif kind == "root":
            self._arm_group(rw, debounce=True)
        elif kind == "overflow":
            log.warning("watch.overflow", rule=rw.rule.name, watch=str(rw.rule.watch))
            rw.request("full")
        elif kind in ("gone", "limit"):
            rw.request(kind)

    # --- root passes ------------------------------------------------------------------------

    async def _root_pass(self, rw: _RuleWatch, *, full: bool, attach: bool = False) -> None:
        """List the watch root: find new drops, prune vanished ones, feed the files-mode group."""
        assert self._loop is not None
        rule = rw.rule
        started = time.perf_counter()
        try:
            identity, listing = await asyncio.to_thread(_list_checked, rw.root, rule.ignore)
        except OSError as exc:
            raise _RootGone(repr(exc)) from exc
        if rw.identity is not None and identity != rw.identity:
            raise _RootGone("watch folder replaced")
        if rw.closed:
            return
        polling = rw.fsw is not None and rw.fsw.needs_polling
        dirs = listing.dirs

        for gone in [n for n in rw.done if n not in dirs]:
            del rw.done[gone]  # moved away or deleted after its run: a same-named folder is new
        for name in [n for n in rw.pending if n not in dirs]:
            self._poke(rw, name, delay=0.0)  # its own scan reports it as vanished
        rw.accepted.intersection_update(dirs)
        rw.skipped_logged.intersection_update(dirs)
        rw.unreadable.intersection_update(dirs)

        if rw.files_mode:
            recovered: list[str] = []
            if attach:
                recovered = await self._recover_orphans(rw, listing)
                # Folders already here at startup are drops too: a crash between moving a batch
                # and submitting it must not lose it (the ledger knows which were submitted).
                rw.accepted.update(dirs)
            # Recovered batches were renamed after the listing was taken, and possibly before
            # the observer watched the root: take them from here, not from an event.
            candidates = [n for n in dirs if n in rw.accepted] + recovered
            quiet = [n for n in dirs if n not in rw.accepted]
            self._log_once(rw, quiet, "watch.folder_ignored", "files mode: only batches are drops")
        else:
            candidates = list(dirs)
            markers = {
                n[: -len(rw.marker)]
                for n in listing.files
                if rw.marker and n.endswith(rw.marker) and n[: -len(rw.marker)] in dirs
            }
            loose = [
                n
                for n in listing.files
                if not (rw.marker and n.endswith(rw.marker) and n[: -len(rw.marker)] in dirs)
            ]
            self._log_once(rw, loose, "watch.file_ignored", "folder mode: loose files are no drops")
            for drop in markers:
                marker_file = f"{drop}{rw.marker}"
                if drop in rw.pending or (polling and marker_file not in rw.top_files):
                    self._poke(rw, drop, delay=0.0)
        self._log_once(rw, list(listing.skipped), "watch.entry_skipped", "symlink or special file")

        new = 0
        for name in candidates:
            if name in rw.pending:
                continue
            if name in rw.done:
                if polling and name in rw.top_dirs and rw.top_dirs[name] != dirs[name]:
                    self._poke(rw, name, delay=0.0)  # entries added or removed inside it
                continue
            if self._is_known(rule.name, name):
                rw.done[name] = None
                continue
            new += 1
            self._poke(rw, name, delay=0.0)
        rw.top_dirs = dict(dirs)
        rw.top_files = set(listing.files)

        if rw.files_mode:
            await self._update_group(rw, listing)
        if not full:
            return
        log.debug(
            "rescan.done",
            rule=rule.name,
            dirs=len(dirs),
            files=len(listing.files),
            new=new,
            pending=len(rw.pending),
            done=len(rw.done),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _log_once(self, rw: _RuleWatch, names: list[str], event: str, why: str) -> None:
        for name in names:
            key = f"{event}\0{name}"
            if key not in rw.quiet_top:
                rw.quiet_top.add(key)
                log.debug(event, rule=rw.rule.name, name=name, reason=why)
        if len(rw.quiet_top) > 10_000:
            rw.quiet_top.clear()  # bounded memory; at worst a debug line repeats

    # --- folder drops -----------------------------------------------------------------------

    def _poke(
        self, rw: _RuleWatch, name: str, *, delay: float, event_at: float | None = None
    ) -> None:
        """Mark a drop dirty: scan it after `delay` (later events in a burst push it back).

        `event_at`: the loop time an observer event for it arrived (settling counts from it).
        """
        assert self._loop is not None
        if rw.closed:
            return
        p = rw.pending.get(name)
        if p is None:
            tracker = SettleTracker(
                settle_seconds=rw.rule.settle_seconds,
                marker_required=rw.marker is not None,
                max_backoff_s=MAX_BLOCKED_RECHECK_S,
            )
            p = rw.pending[name] = _Pending(name, tracker)
        if event_at is not None:
            p.last_event = event_at
        if p.busy:
            p.poked = True
            return
        now = self._loop.time()
        if p.burst_started is None:
            p.burst_started = now
        at = min(now + delay, p.burst_started + max(rw.rule.settle_seconds, delay))
        self._arm(rw, p, at)

    def _arm(self, rw: _RuleWatch, p: _Pending, at: float) -> None:
        assert self._loop is not None
        if p.timer is not None:
            p.timer.cancel()
        p.timer = self._loop.call_at(at, self._fire, rw, p)

    def _fire(self, rw: _RuleWatch, p: _Pending) -> None:
        p.timer = None
        p.burst_started = None
        if rw.closed or rw.pending.get(p.name) is not p or p.busy:
            return
        p.busy = True
        rw.scan_queue.append(p)
        rw.scan_wake.set()
        if rw.drainer is None or rw.drainer.done():
            rw.drainer = self._spawn(rw, self._drain(rw))

    def _spawn(self, rw: _RuleWatch, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        rw.tasks.add(task)
        task.add_done_callback(rw.tasks.discard)
        return task

    async def _drain(self, rw: _RuleWatch) -> None:
        """The rule's scanner: due drops, up to SCAN_BATCH per worker-thread hop, until cancelled.

        Sleeps on `scan_wake` while nothing is due. Never ends on an error: a drop whose scan
        or decision failed is logged and re-armed, the others carry on.
        """
        while not rw.closed:
            if not rw.scan_queue:
                rw.scan_wake.clear()
                await rw.scan_wake.wait()
                continue
            batch: list[_Pending] = []
            while rw.scan_queue and len(batch) < SCAN_BATCH:
                p = rw.scan_queue.popleft()
                if rw.pending.get(p.name) is p:
                    batch.append(p)
                else:
                    p.busy = False  # forgotten while queued
            if not batch:
                continue
            try:
                await self._scan_batch(rw, batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug; keep detecting rather than die
                log.exception("detect.error", rule=rw.rule.name, error=repr(exc))
                for p in batch:
                    self._scan_failed(rw, p)
                await asyncio.sleep(ERROR_DELAY_S)

    async def _scan_batch(self, rw: _RuleWatch, batch: list[_Pending]) -> None:
        rule = rw.rule
        names = tuple(p.name for p in batch)
        results: list[_ScanResult]
        try:
            results = await asyncio.to_thread(_scan_many, rw.root, names, rule.ignore, rw.marker)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            results = [exc] * len(batch)
        handover: list[tuple[Scan, Path | None, str]] = []
        for p, result in zip(batch, results, strict=True):
            try:
                item = self._after_scan(rw, p, result)
            except Exception as exc:  # a bug in one drop's decision must not stop the others
                log.exception("detect.error", rule=rule.name, drop=p.name, error=repr(exc))
                self._scan_failed(rw, p)
                continue
            if item is not None:
                handover.append(item)
        if handover:
            # Emitted from one task per batch: the pipeline records them in one transaction, and
            # a slow emit never holds up the next scans.
            self._spawn(rw, self._hand_over_many(rw, handover))

    def _scan_failed(self, rw: _RuleWatch, p: _Pending) -> None:
        """Re-check a drop whose scan or decision failed, after a pause."""
        assert self._loop is not None
        p.busy = False
        p.poked = False
        if not rw.closed and rw.pending.get(p.name) is p and p.timer is None:
            delay = max(rw.rule.settle_seconds, ERROR_DELAY_S)
            self._arm(rw, p, self._loop.time() + delay)

    def _after_scan(
        self, rw: _RuleWatch, p: _Pending, result: _ScanResult
    ) -> tuple[Scan, Path | None, str] | None:
        """Decide on one drop's scan, on the loop; returns what to hand over, if it is ready."""
        assert self._loop is not None
        rule = rw.rule
        if isinstance(result, BaseException):
            log.error(
                "detect.error",
                rule=rule.name,
                drop=p.name,
                error=repr(result),
                exc_info=result,
            )
            self._scan_failed(rw, p)
            return None
        p.busy = False
        if rw.closed or rw.pending.get(p.name) is not p:
            return None
        scan, marked = result
        if scan is None:
            self._vanished(rw, p)
            return None
        if not p.seen:
            p.seen = True
            if p.name not in rw.done:
                log.debug("drop.detected", rule=rule.name, drop=p.name)
        self._log_scan_problems(rw, scan)
        decision = p.tracker.observe(
            scan, now=self._loop.time(), marked=marked, changed_at=p.last_event
        )
        if p.poked:
            # Something changed while it was queued or scanned: look again before deciding.
            p.poked = False
            self._poke(rw, p.name, delay=DEBOUNCE_S)
            return None
        if decision.verdict == "blocked" and p.name in rw.done:
            # Already handed over, and now incomplete (its marker removed after submission, or
            # a file being replaced): stop watching it; the next event or marker re-checks it.
            del rw.pending[p.name]
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
            self._arm(rw, p, decision.check_at)
            return None
        del rw.pending[p.name]
        fingerprint = scan.fingerprint()
        if rw.done.get(p.name, _MISSING) == fingerprint:
            log.debug("drop.unchanged", rule=rule.name, drop=p.name)
            return None
        rw.done[p.name] = fingerprint
        marker = rule.watch / f"{p.name}{rw.marker}" if marked and rw.marker else None
        return scan, marker, decision.reason

    async def _hand_over_many(
        self, rw: _RuleWatch, items: list[tuple[Scan, Path | None, str]]
    ) -> None:
        for scan, marker, reason in items:
            await self._hand_over(rw, scan, marker=marker, reason=reason)

    async def _hand_over(
        self, rw: _RuleWatch, scan: Scan, *, marker: Path | None, reason: str
    ) -> None:
        assert self._emit is not None
        rule = rw.rule
        fingerprint = scan.fingerprint()
        log.debug(
            "drop.complete",
            rule=rule.name,
            drop=scan.drop,
            files=len(scan.files),
            bytes=scan.total_bytes(),
            fingerprint=fingerprint[:16],
            settle_seconds=rule.settle_seconds,
            reason=reason,
        )
        ready = ReadyDrop(
            rule=rule.name, drop=scan.drop, scan=scan, marker=marker, detected_at=time.time()
        )
        try:
            await self._emit(ready)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Not handed over: forget it, so the next rescan or event finds it again.
            if rw.done.get(scan.drop) == fingerprint:
                del rw.done[scan.drop]
            log.exception("detect.emit_failed", rule=rule.name, drop=scan.drop, error=repr(exc))

    def _vanished(self, rw: _RuleWatch, p: _Pending) -> None:
        del rw.pending[p.name]
        was_done = rw.done.pop(p.name, _MISSING) is not _MISSING
        rw.accepted.discard(p.name)
        rw.unreadable.discard(p.name)
        rw.skipped_logged.discard(p.name)
        if p.seen and not was_done:
            log.info("drop.vanished", rule=rw.rule.name, drop=p.name)

    def _log_scan_problems(self, rw: _RuleWatch, scan: Scan) -> None:
        if scan.errors and scan.drop not in rw.unreadable:
            rw.unreadable.add(scan.drop)
            log.warning(
                "drop.unreadable",
                rule=rw.rule.name,
                drop=scan.drop,
                errors=len(scan.errors),
                error=scan.errors[0],
                hint="not ready while unreadable",
            )
        elif not scan.errors:
            rw.unreadable.discard(scan.drop)
        if scan.skipped and scan.drop not in rw.skipped_logged:
            rw.skipped_logged.add(scan.drop)
            log.debug(
                "drop.entries_skipped",
                rule=rw.rule.name,
                drop=scan.drop,
                skipped=len(scan.skipped),
                first=scan.skipped[0],
                reason="symlinks and special files are never followed",
            )

    # --- files mode -------------------------------------------------------------------------

    def _arm_group(self, rw: _RuleWatch, *, debounce: bool, at: float | None = None) -> None:
        """Schedule a root pass for the loose-file group (debounced after events)."""
        assert self._loop is not None
        if rw.closed:
            return
        now = self._loop.time()
        if debounce:
            if rw.group_burst is None:
                rw.group_burst = now
            at = min(now + DEBOUNCE_S, rw.group_burst + max(rw.rule.settle_seconds, DEBOUNCE_S))
        if at is None:
            return
        if rw.group_timer is not None:
            rw.group_timer.cancel()
        rw.group_timer = self._loop.call_at(at, self._fire_group, rw)

    def _fire_group(self, rw: _RuleWatch) -> None:
        rw.group_timer = None
        rw.group_burst = None
        rw.request("root")

    async def _update_group(self, rw: _RuleWatch, listing: RootListing) -> None:
        assert self._loop is not None
        decision = rw.group.observe(
            listing.files, in_progress=bool(listing.in_progress), now=self._loop.time()
        )
        if rw.group_timer is not None and rw.group_burst is None:
            rw.group_timer.cancel()
            rw.group_timer = None
        if decision.close:
            await self._close_group(rw, decision.close)
        if decision.check_at is not None and rw.group_timer is None:
            self._arm_group(rw, debounce=False, at=decision.check_at)

    async def _close_group(self, rw: _RuleWatch, names: tuple[str, ...]) -> None:
        rule = rw.rule
        rw.seq += 1
        name_for = functools.partial(_batch_name, rule, rw.seq, datetime.now().astimezone())
        try:
            batch = await asyncio.to_thread(
                move_into_batch, rw.root, names, name_for=name_for, extra=rule.ignore
            )
        except OSError as exc:
            log.error("batch.failed", rule=rule.name, files=len(names), error=repr(exc))
            return
        if batch is None or batch.scan is None:
            return
        self._register_batch(rw, batch)
        if batch.scan.files:
            rw.done[batch.name] = batch.scan.fingerprint()
            # Its files settled before the move: hand it over now, without blocking the group.
            self._spawn(rw, self._hand_over(rw, batch.scan, marker=None, reason="batch"))

    def _register_batch(self, rw: _RuleWatch, batch: Batch) -> None:
        rw.accepted.add(batch.name)
        log.info(
            "batch.created",
            rule=rw.rule.name,
            drop=batch.name,
            files=len(batch.moved),
            bytes=batch.scan.total_bytes() if batch.scan else 0,
            missing=len(batch.missing),
        )

    async def _recover_orphans(self, rw: _RuleWatch, listing: RootListing) -> list[str]:
        """Batch temp folders left by a crash mid-move: finish them as batches (their names)."""
        rule = rw.rule
        recovered: list[str] = []
        for orphan in listing.orphans:
            rw.seq += 1
            name_for = functools.partial(_batch_name, rule, rw.seq, datetime.now().astimezone())
            path = os.path.join(rw.root, orphan)
            try:
                name = await asyncio.to_thread(_recover_orphan, rw.root, path, name_for)
            except OSError as exc:
                log.warning("batch.recover_failed", rule=rule.name, drop=orphan, error=repr(exc))
                continue
            if name is not None:
                log.info("batch.recovered", rule=rule.name, drop=name, temp=orphan)
                rw.accepted.add(name)
                recovered.append(name)
        return recovered


# --- helpers run on worker threads -----------------------------------------------------------


def _identity_or_none(root: str) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _list_checked(root: str, extra: Sequence[str]) -> tuple[tuple[int, int], RootListing]:
    st = os.stat(root)
    return (st.st_dev, st.st_ino), list_root(root, extra=extra)


def _scan_with_marker(
    root: str, drop: str, extra: Sequence[str], marker: str | None
) -> tuple[Scan | None, bool]:
    scan = scan_drop(root, drop, extra=extra)
    marked = bool(marker) and os.path.isfile(os.path.join(root, f"{drop}{marker}"))
    return scan, marked


def _scan_many(
    root: str, drops: Sequence[str], extra: Sequence[str], marker: str | None
) -> list[_ScanResult]:
    """Scan several drops in one worker-thread hop; one drop's failure is its result alone."""
    results: list[_ScanResult] = []
    for drop in drops:
        try:
            results.append(_scan_with_marker(root, drop, extra, marker))
        except Exception as exc:
            results.append(exc)
    return results


def _recover_orphan(root: str, path: str, name_for: Callable[[int], str]) -> str | None:
    try:
        os.rmdir(path)  # empty: nothing was moved yet
        return None
    except OSError:
        pass
    return place_batch(root, path, name_for=name_for)


def _batch_name(rule: Rule, seq: int, now: datetime, attempt: int) -> str:
    """The batch folder name for `seq`; later attempts (name taken) add a suffix."""
    try:
        base = render_template(
            rule.batch_name,
            rule=rule.name,
            drop="",
            deployment_id=rule.deployment_id,
            now=now,
            seq=seq,
        )
    except ValueError:
        base = ""
    if not base or "/" in base or base.startswith(".") or "\0" in base:
        # Config validation rejects such templates; never create a hidden or nested folder.
        base = f"batch-{now:%Y%m%d-%H%M%S}-{seq}"
    return base if attempt == 0 else f"{base}-{attempt + 1}"
