"""The submit queue's reads of the ledger: which ready drops are due, and when the next one is.

A part of `Ledger` (a mixin over its backend). Imports only the core and this package.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from watcher.ledger.backend import Backend
from watcher.model import Drop


class DueQueue:
    """`Ledger.due()` and `Ledger.next_due_at()`."""

    _backend: Backend

    def due(
        self,
        now: float,
        limit: int = 1000,
        *,
        skip_rules: Collection[str] = (),
        priority: Mapping[str, int] | None = None,
    ) -> list[Drop]:
        """Live `ready` rows whose next_attempt_at is NULL or <= now, up to `limit`.

        Rows of `skip_rules` (rules outside their active_hours) are left out. Order: the
        `priority` of the row's rule, higher first (a rule not in it counts 0), then the
        longest-waiting first.
        """
        with self._backend.read() as rows:
            return rows.due(now, limit, skip_rules=skip_rules, priority=priority)

    def next_due_at(self, *, skip_rules: Collection[str] = ()) -> float | None:
        """The earliest next_attempt_at among live `ready` rows not of `skip_rules` (NULL counts
        as created_at); None when nothing is ready. Lets the submit loop sleep until then."""
        with self._backend.read() as rows:
            return rows.next_due_at(skip_rules=skip_rules)
