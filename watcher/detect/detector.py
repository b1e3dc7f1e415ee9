"""The `Detector`: one `RuleWatcher` per rule, started, swapped on reload and stopped together.

Service layer on the daemon's asyncio loop. Imports fs, config and model; never the pipeline,
the ledger or the hub client (it asks `is_known` instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from watcher.config import Rule
from watcher.detect.rule_watcher import RuleWatcher
from watcher.detect.state import Emit, IsKnown, log


class Detector:
    """Finds complete drops for a set of rules and hands each to `emit`, once.

    Observer events only mark drops dirty; scans decide. Startup and every `rescan_seconds` the
    watch roots are listed (one lstat per top-level entry); only drops not yet emitted or known
    to the ledger are walked.
    """

    def __init__(
        self, rules: Sequence[Rule], *, is_known: IsKnown, move_files: bool = True
    ) -> None:
        """`is_known(rule, drop)`: the ledger has an active (non-archived) row for the drop.

        `move_files=False` (`run --dry-run`): files-mode batches are planned and logged, never
        moved, so detection changes nothing on disk.
        """
        self._rules: dict[str, Rule] = {r.name: r for r in rules}
        self._is_known = is_known
        self._move_files = move_files
        self._watchers: dict[str, RuleWatcher] = {}
        self._rule_tasks: set[asyncio.Task[None]] = set()  # incl. stopped rules still cleaning up
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: Emit | None = None
        self.startup_scan_done = asyncio.Event()

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
                firsts = [rw.first_attempt.wait() for rw in self._watchers.values()]
                await asyncio.gather(*firsts)
                if all(rw.first_attempt.is_set() for rw in self._watchers.values()):
                    break
            self.startup_scan_done.set()
            await asyncio.Event().wait()
        finally:
            for rw in self._watchers.values():
                rw.close()
            tasks = list(self._rule_tasks)
            for task in tasks:
                task.cancel()
            # Each rule task stops and joins its observer on the way out: no thread outlives run().
            await asyncio.gather(*tasks, return_exceptions=True)
            self._watchers.clear()
            self._loop = None

    def update_rules(self, rules: Sequence[Rule]) -> None:
        """Hot reload: start new rules, stop removed ones, restart changed ones (loop thread)."""
        new = {r.name: r for r in rules}
        old, self._rules = self._rules, new
        if self._loop is None:
            return
        for name in old.keys() - new.keys():
            rw = self._watchers.pop(name, None)
            if rw is not None:
                rw.stop()
                log.info("watch.stopped", rule=name)
        for name, rule in new.items():
            rw = self._watchers.get(name)
            if rw is None:
                self._start_rule(rule, previous=None)
            elif rw.rule != rule:
                rw.stop()
                self._start_rule(rule, previous=rw.task)

    def forget(self, rule: str, drop: str) -> None:
        """Drop the memory of a drop whose folder was moved away or deleted after its run."""
        rw = self._watchers.get(rule)
        if rw is not None:
            rw.forget(drop)

    async def rescan_all(self) -> None:
        """List every attached watch root now and wait until each rescan is done."""
        if self._loop is None:
            return
        waits = [fut for rw in self._watchers.values() if (fut := rw.request_full()) is not None]
        if waits:
            await asyncio.gather(*waits)

    def _start_rule(self, rule: Rule, *, previous: asyncio.Task[None] | None) -> None:
        assert self._loop is not None and self._emit is not None
        rw = RuleWatcher(
            rule,
            loop=self._loop,
            emit=self._emit,
            is_known=self._is_known,
            move_files=self._move_files,
        )
        self._watchers[rule.name] = rw
        task = rw.start(previous=previous)
        self._rule_tasks.add(task)
        task.add_done_callback(self._rule_tasks.discard)
