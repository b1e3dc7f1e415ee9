"""One rule's detection: a `RuleWatcher` owns its watch folder's observer, drops and timers.

Attaches (waiting while the folder is missing), turns hints into pokes, lists the folder on
rescans, polls and root checks. Imports fs, config and model; never pipeline, ledger or hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from watcher.config import Rule
from watcher.detect import timing
from watcher.detect.batches import FileBatches
from watcher.detect.folders import FolderDrops
from watcher.detect.roots import RootView
from watcher.detect.state import Emit, IsKnown, RuleState, log
from watcher.fs.hints import Bridge, HintKind
from watcher.fs.inotify import is_watch_limit
from watcher.fs.observers import OBSERVERS, FsWatch, PollingWatch
from watcher.fs.scan import identity_or_none, list_root_checked, root_identity
from watcher.names import is_in_progress


class _RootGone(Exception):
    """The watch folder was deleted, replaced or became unreadable: detach and wait for it."""


class _Reattach(Exception):
    """Restart the rule's watch (observer died, or switching to polling)."""


class RuleWatcher:
    """Everything detection knows and does for one rule. Touched only on the loop thread.

    `serve()` runs attach -> serve -> detach until stopped, backing off while attaching fails.
    Its parts share one `RuleState`: `folders` settles folder drops, `batches` groups loose
    files (files mode), `roots` reconciles each listing of the watch folder.
    """

    def __init__(
        self,
        rule: Rule,
        *,
        loop: asyncio.AbstractEventLoop,
        emit: Emit,
        is_known: IsKnown,
        move_files: bool = True,
    ) -> None:
        self.rule = rule
        self.state = RuleState(rule, loop=loop, emit=emit, move_files=move_files)
        self.folders = FolderDrops(self.state)
        self.batches = FileBatches(self.state, request_root_pass=lambda: self.request("root"))
        self.roots = RootView(self.state, self.folders, self.batches, is_known=is_known)
        self.identity: tuple[int, int] | None = None
        self.fsw: FsWatch | None = None
        self.bridge: Bridge | None = None
        self.force_polling = False
        self.wake = asyncio.Event()
        self.flags: set[str] = set()  # "full", "root", "gone", "limit"
        self.full_waiters: list[asyncio.Future[None]] = []
        self.first_attempt = asyncio.Event()  # set once the folder was listed or found missing
        self.missing_warned = False
        self.task: asyncio.Task[None] | None = None

    # --- driven by the Detector -------------------------------------------------------------

    def start(self, *, previous: asyncio.Task[None] | None) -> asyncio.Task[None]:
        """Start serving in a task; `previous`: the task of the rule this one replaces."""
        self.task = self.state.loop.create_task(
            self.serve(previous), name=f"detect:{self.rule.name}"
        )
        return self.task

    def close(self) -> None:
        """Act on nothing from now on (the task, once cancelled, cleans up)."""
        self.state.closed = True

    def stop(self) -> None:
        self.close()
        if self.task is not None:
            self.task.cancel()

    def forget(self, drop: str) -> None:
        self.state.forget(drop)

    def request_full(self) -> asyncio.Future[None] | None:
        """Ask for a full rescan now; the future resolves when it is done (None: not attached)."""
        if self.fsw is None or self.state.closed:
            return None
        fut = self.state.loop.create_future()
        self.full_waiters.append(fut)
        self.request("full")
        return fut

    def request(self, flag: str) -> None:
        self.flags.add(flag)
        self.wake.set()

    def resolve_waiters(self) -> None:
        waiters, self.full_waiters = self.full_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # --- lifecycle --------------------------------------------------------------------------

    async def serve(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            # A restarted rule: let the old observer stop before watching the same folder again.
            # (asyncio.wait: the old task's outcome is not ours, but our own cancellation is.)
            await asyncio.wait([previous])
        loop = self.state.loop
        failures = 0
        try:
            while not self.state.closed:
                attached_at: float | None = None
                try:
                    await self._attach()
                    attached_at = loop.time()
                    await self._serve_attached()
                except _RootGone as exc:
                    log.debug("watch.detached", rule=self.rule.name, reason=str(exc))
                except _Reattach:
                    pass
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("detect.error", rule=self.rule.name, error=repr(exc))
                finally:
                    await self._detach()
                # Re-attach at once after a healthy spell; back off while attaching keeps failing.
                healthy = attached_at is not None and loop.time() - attached_at > 30.0
                failures = 0 if healthy else failures + 1
                if failures:
                    await asyncio.sleep(min(30.0, timing.ERROR_DELAY_S / 2 * 2 ** (failures - 1)))
        finally:
            await self._shut_down()

    async def _shut_down(self) -> None:
        self.state.closed = True
        self.folders.cancel_timers()
        self.batches.cancel_timer()
        self.resolve_waiters()
        self.first_attempt.set()
        tasks = list(self.state.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _attach(self) -> None:
        await self._wait_for_root()
        rule = self.rule
        self.state.root = os.path.realpath(rule.watch)
        mode = "polling" if self.force_polling else rule.observer
        bridge = Bridge(self.state.loop, self._on_hint)
        fsw = self._make_watch(mode, bridge)
        try:
            await asyncio.to_thread(fsw.start)
        except OSError as exc:
            bridge.close()
            if not is_watch_limit(exc) or mode == "polling":
                raise _RootGone(repr(exc)) from exc
            self._fall_back(exc)
            mode = "polling"
            bridge = Bridge(self.state.loop, self._on_hint)
            fsw = self._make_watch(mode, bridge)
        self.fsw, self.bridge = fsw, bridge
        log.info("watch.attached", rule=rule.name, watch=str(rule.watch), observer=mode)
        await self._root_pass(full=True, attach=True)
        self.first_attempt.set()

    async def _wait_for_root(self) -> None:
        """Until the watch folder is usable: one warning per disappearance, a look every 2 s."""
        rule = self.rule
        while True:
            try:
                self.identity = await asyncio.to_thread(root_identity, str(rule.watch))
                break
            except OSError as exc:
                if not self.missing_warned:
                    log.warning(
                        "watch.missing",
                        rule=rule.name,
                        watch=str(rule.watch),
                        error=repr(exc),
                        retry_seconds=timing.ROOT_CHECK_S,
                    )
                    self.missing_warned = True
                self.first_attempt.set()
                self.resolve_waiters()
                await asyncio.sleep(timing.ROOT_CHECK_S)
        self.missing_warned = False

    def _make_watch(self, mode: str, bridge: Bridge) -> FsWatch:
        factory = OBSERVERS.get(mode, PollingWatch)
        return factory(
            self.state.root,
            send=bridge.send,
            files_mode=self.state.files_mode,
            marker=self.state.marker,
            poll_interval_seconds=self.rule.poll_interval_seconds,
        )

    def _fall_back(self, exc: BaseException | None) -> None:
        self.force_polling = True
        log.warning(
            "watch.fallback_polling",
            rule=self.rule.name,
            watch=str(self.rule.watch),
            error=repr(exc) if exc is not None else "inotify watch limit reached",
            poll_interval_seconds=self.rule.poll_interval_seconds,
            hint="raise fs.inotify.max_user_watches (sysctl) to get events back",
        )

    async def _detach(self) -> None:
        fsw, self.fsw = self.fsw, None
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        self.resolve_waiters()
        if fsw is None:
            return
        try:
            await asyncio.to_thread(fsw.stop)
        except asyncio.CancelledError:
            fsw.stop()  # make sure no observer thread outlives us
            raise

    async def _serve_attached(self) -> None:
        assert self.fsw is not None
        loop = self.state.loop
        rule = self.rule
        polling = self.fsw.needs_polling
        now = loop.time()
        next_full = now + rule.rescan_seconds
        next_poll = now + rule.poll_interval_seconds if polling else float("inf")
        next_check = now + timing.ROOT_CHECK_S if not polling else float("inf")
        while True:
            if not self.flags:
                self.wake.clear()
                timeout = max(0.0, min(next_full, next_poll, next_check) - loop.time())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self.wake.wait()
            flags, self.flags = self.flags, set()
            now = loop.time()
            if "gone" in flags:
                raise _RootGone("watch folder deleted or moved")
            if "limit" in flags and not polling:
                self._fall_back(None)
                raise _Reattach
            if "full" in flags or now >= next_full:
                await self._root_pass(full=True)
                next_full = now + rule.rescan_seconds
                self.resolve_waiters()
            elif "root" in flags or now >= next_poll:
                await self._root_pass(full=False)
            if now >= next_poll:
                next_poll = now + rule.poll_interval_seconds
            if now >= next_check:
                next_check = now + timing.ROOT_CHECK_S
                await self._check_root()

    async def _check_root(self) -> None:
        """Detach when the folder was deleted, replaced or unmounted; re-attach a dead observer."""
        assert self.fsw is not None
        identity = await asyncio.to_thread(identity_or_none, self.state.root)
        if identity != self.identity:
            raise _RootGone("watch folder deleted, replaced or unmounted")
        if not self.fsw.healthy():
            log.warning("watch.observer_failed", rule=self.rule.name, watch=str(self.rule.watch))
            raise _Reattach

    # --- hints from the observer thread (delivered on the loop) -----------------------------

    def _on_hint(self, kind: HintKind, name: str) -> None:
        state = self.state
        if state.closed:
            return
        if kind == "drop":
            if is_in_progress(name, self.rule.ignore):
                return
            self.folders.poke(name, delay=timing.DEBOUNCE_S, event_at=state.loop.time())
        elif kind == "root":
            self.batches.arm(debounce=True)
        elif kind == "overflow":
            log.warning("watch.overflow", rule=self.rule.name, watch=str(self.rule.watch))
            self.request("full")
        elif kind in ("gone", "limit"):
            self.request(kind)

    # --- root passes ------------------------------------------------------------------------

    async def _root_pass(self, *, full: bool, attach: bool = False) -> None:
        """List the watch root and reconcile it; a full pass (rescan) logs what it found."""
        state = self.state
        started = time.perf_counter()
        try:
            identity, listing = await asyncio.to_thread(
                list_root_checked, state.root, self.rule.ignore
            )
        except OSError as exc:
            raise _RootGone(repr(exc)) from exc
        if self.identity is not None and identity != self.identity:
            raise _RootGone("watch folder replaced")
        if state.closed:
            return
        polling = self.fsw is not None and self.fsw.needs_polling
        new = await self.roots.reconcile(listing, polling=polling, attach=attach)
        if not full:
            return
        log.debug(
            "rescan.done",
            rule=self.rule.name,
            dirs=len(listing.dirs),
            files=len(listing.files),
            new=new,
            pending=len(self.folders.pending),
            done=len(state.done),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
