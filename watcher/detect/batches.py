"""Files-mode batches: loose files grouped, moved into a batch folder and handed over at once.

Also finishes batch temp folders a crash left behind. Imports fs, config and model (and the
template renderer); never the pipeline, ledger or hub.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from datetime import datetime

from watcher.config import Rule, render_template, rendered_name_problem
from watcher.detect import timing
from watcher.detect.state import RuleState, log
from watcher.fs.batches import Batch, move_into_batch, recover_batch
from watcher.fs.groups import GroupTracker, LooseFile
from watcher.fs.scan import RootListing


class FileBatches:
    """One files-mode rule's loose-file group: its timer, closing it into a batch, recovery."""

    def __init__(self, state: RuleState, *, request_root_pass: Callable[[], None]) -> None:
        self._state = state
        self._request_root_pass = request_root_pass
        rule = state.rule
        self.group = GroupTracker(settle_seconds=rule.settle_seconds, max_files=rule.max_files)
        self.timer: asyncio.TimerHandle | None = None
        self.burst: float | None = None
        self.seq = 0
        # Dry run: loose files already reported as a planned batch, by name -> signature, so
        # each is reported once (again only if it changes).
        self.planned: dict[str, LooseFile | None] = {}

    def arm(self, *, debounce: bool, at: float | None = None) -> None:
        """Schedule a root pass for the loose-file group (debounced after events)."""
        state = self._state
        if state.closed:
            return
        now = state.loop.time()
        if debounce:
            if self.burst is None:
                self.burst = now
            delay = timing.DEBOUNCE_S
            at = min(now + delay, self.burst + max(state.rule.settle_seconds, delay))
        if at is None:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer = state.loop.call_at(at, self._fire)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _fire(self) -> None:
        self.timer = None
        self.burst = None
        self._request_root_pass()

    async def update(self, listing: RootListing) -> None:
        """Feed a root listing to the group; close what settled, and re-arm for the rest."""
        files = listing.files
        if self.planned:
            files = {n: sig for n, sig in files.items() if self.planned.get(n) != sig}
        decision = self.group.observe(
            files, in_progress=bool(listing.in_progress), now=self._state.loop.time()
        )
        if self.timer is not None and self.burst is None:
            self.timer.cancel()
            self.timer = None
        if decision.close and not self._state.move_files:
            self._plan(decision.close, listing)
        elif decision.close:
            await self._close(decision.close)
        if decision.check_at is not None and self.timer is None:
            self.arm(debounce=False, at=decision.check_at)

    async def _close(self, names: tuple[str, ...]) -> None:
        state = self._state
        rule = state.rule
        self.seq += 1
        name_for = functools.partial(batch_name, rule, self.seq, datetime.now().astimezone())
        try:
            batch = await asyncio.to_thread(
                move_into_batch, state.root, names, name_for=name_for, extra=rule.ignore
            )
        except OSError as exc:
            log.error("batch.failed", rule=rule.name, files=len(names), error=repr(exc))
            return
        if batch is None or batch.scan is None:
            return
        self._register(batch)
        if batch.scan.files:
            state.done[batch.name] = batch.scan.fingerprint()
            # Its files settled before the move: hand it over now, without blocking the group.
            state.spawn(state.hand_over(batch.scan, marker=None, reason="batch"))

    def _plan(self, names: tuple[str, ...], listing: RootListing) -> None:
        """Dry run: say which loose files would go into which batch, and leave them in place."""
        rule = self._state.rule
        self.seq += 1
        name = batch_name(rule, self.seq, datetime.now().astimezone(), 0)
        for n in names:
            self.planned[n] = listing.files.get(n)
        log.info(
            "batch.dry_run",
            rule=rule.name,
            drop=name,
            files=len(names),
            names=list(names[:50]),
            note="files mode: these files would be moved into this batch folder, then submitted",
        )

    def _register(self, batch: Batch) -> None:
        log.info(
            "batch.created",
            rule=self._state.rule.name,
            drop=batch.name,
            files=len(batch.moved),
            bytes=batch.scan.total_bytes() if batch.scan else 0,
            missing=len(batch.missing),
        )

    async def recover_orphans(self, listing: RootListing) -> list[str]:
        """Batch temp folders left by a crash mid-move: finish them as batches (their names)."""
        state = self._state
        rule = state.rule
        recovered: list[str] = []
        if not state.move_files:
            return recovered
        for orphan in listing.orphans:
            self.seq += 1
            name_for = functools.partial(batch_name, rule, self.seq, datetime.now().astimezone())
            path = os.path.join(state.root, orphan)
            try:
                name = await asyncio.to_thread(recover_batch, state.root, path, name_for=name_for)
            except OSError as exc:
                log.warning("batch.recover_failed", rule=rule.name, drop=orphan, error=repr(exc))
                continue
            if name is not None:
                log.info("batch.recovered", rule=rule.name, drop=name, temp=orphan)
                recovered.append(name)
        return recovered


def batch_name(rule: Rule, seq: int, now: datetime, attempt: int) -> str:
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
    problem = rendered_name_problem(base)
    if problem is None and ("/" in base or base.startswith(".")):
        problem = "a batch folder name must not contain '/' or start with '.'"
    if problem is not None:
        # `check` catches most such templates with sample values; this is the real value.
        # Never create a hidden, nested or in-progress-looking folder: its files would never
        # be submitted. Use a safe name and say so.
        fallback = f"batch-{now:%Y%m%d-%H%M%S}-{seq}"
        log.error(
            "batch.name_invalid",
            rule=rule.name,
            batch_name=rule.batch_name,
            rendered=base,
            error=problem,
            using=fallback,
        )
        base = fallback
    return base if attempt == 0 else f"{base}-{attempt + 1}"
