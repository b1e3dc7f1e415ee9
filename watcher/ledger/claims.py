"""Claims on a ledger several hosts share: who works on a drop, for how long, and fencing.

A host claims the rows it works on (`take`: SELECT ... FOR UPDATE SKIP LOCKED, then its id, a
lease and a new epoch on each). Its heartbeat extends its unexpired leases. Every state change
it makes checks, in the same transaction, that the row is still its claim at the epoch it took
(`fence`); a host whose lease ended, or whose drop another host took over, gets ClaimLostError
and nothing is written. Rows nobody claims (a single host, a fresh detection) are not fenced.
Imports only the core and `backend`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from watcher.errors import LedgerError
from watcher.ledger.backend import Queries, Rows
from watcher.model import Drop, DropState

# The operations only the claim holder may apply (a drop's submission, run and post-run work).
# Intake (record_ready, update_fingerprint, resubmit) and housekeeping (archive) are any host's.
FENCED: Final = frozenset(
    {
        "begin_submit",
        "mark_submitted",
        "schedule_retry",
        "mark_rejected",
        "mark_failed",
        "release",
        "set_run_status",
        "mark_post_action_done",
        "remote_checked",
        "set_batch",
        "file_uploaded",
        "upload_note",
        "uploaded",
        "results_pending",
        "results_saved",
        "results_failed",
    }
)


class ClaimLostError(LedgerError):
    """The drop is no longer this host's claim (its lease ended, or another host took it over):
    the change was not applied; the host must drop that work."""

    def __init__(self, message: str, *, drop_id: str) -> None:
        self.drop_id = drop_id
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class HostBeat:
    """A host's last heartbeat, as `status` shows it."""

    host_id: str
    heartbeat_at: float
    started_at: float

    def alive(self, now: float, lease_s: float) -> bool:
        """Seen within one lease: its claims still hold."""
        return now - self.heartbeat_at <= lease_s


class Claims:
    """One host's claims: its id, the lease length and the epoch of each drop it holds."""

    def __init__(self, host: str, lease_s: float, clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.lease_s = lease_s
        self.clock = clock
        self._held: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Claims({self.host!r}, lease_s={self.lease_s}, held={len(self._held)})"

    def _ours(self, d: Drop) -> bool:
        return d.claimed_by == self.host and self._held.get(d.id) == d.claim_epoch

    def holds(self, d: Drop, now: float) -> bool:
        """`d` is our claim at the epoch we took, and its lease has not ended."""
        return self._ours(d) and (d.lease_until or 0.0) >= now

    def take(
        self,
        rows: Rows,
        states: Sequence[DropState],
        *,
        due_at: float | None = None,
        limit: int | None = None,
        only_new: bool = False,
        skip_rules: Collection[str] = (),
        priority: Mapping[str, int] | None = None,
    ) -> list[Drop]:
        """The live rows in `states` we work on: ours already, plus those nobody holds (or
        whose holder's lease ended), claimed now with a new epoch. `due_at`: only rows due
        then, in the due order. `only_new`: leave out the rows we held already."""
        now = self.clock()
        found = rows.claimable(
            states,
            host=self.host,
            now=now,
            limit=limit,
            due_at=due_at,
            skip_rules=skip_rules,
            priority=priority,
        )
        out: list[Drop] = []
        for d in found:
            if self._ours(d) and (only_new or self.holds(d, now)):
                if not only_new:
                    out.append(d)
                continue
            epoch = d.claim_epoch + 1
            rows.update(
                d.id,
                {"claimed_by": self.host, "lease_until": now + self.lease_s, "claim_epoch": epoch},
            )
            self._held[d.id] = epoch
            # The row as just written (it is locked): no read back.
            out.append(
                replace(d, claimed_by=self.host, lease_until=now + self.lease_s, claim_epoch=epoch)
            )
        return out

    def claim_one(self, rows: Rows, drop_id: str) -> bool:
        """Make one drop ours (unless another host's lease on it holds); True when it is."""
        d = rows.get(drop_id)
        if d is None:
            return False
        now = self.clock()
        if self.holds(d, now):
            return True
        if d.claimed_by not in (None, self.host) and (d.lease_until or 0.0) >= now:
            return False
        epoch = d.claim_epoch + 1
        rows.update(
            drop_id,
            {"claimed_by": self.host, "lease_until": now + self.lease_s, "claim_epoch": epoch},
        )
        self._held[drop_id] = epoch
        return True

    def let_go(self, rows: Rows, drop_id: str) -> None:
        """The drop's work is done: no lease to renew any more. It stays ours, so a stale
        host that wakes up still finds it claimed (fenced), not free."""
        rows.update(drop_id, {"lease_until": None})
        self._held.pop(drop_id, None)

    def fence(self, rows: Queries, drop_id: str, op: str) -> float | None:
        """Raise ClaimLostError unless the row is unclaimed or still our claim (row locked);
        our lease's end when it is ours, None when nobody holds it.

        Raises:
            ClaimLostError: another host holds it, or our lease on it ended.
        """
        d = rows.get(drop_id)
        if d is None or d.claimed_by is None:
            return None
        now = self.clock()
        if self.holds(d, now):
            return d.lease_until
        self._held.pop(drop_id, None)
        why = (
            f"our lease ended {now - (d.lease_until or 0.0):.1f}s ago"
            if d.claimed_by == self.host
            else f"{d.claimed_by} holds it (epoch {d.claim_epoch})"
        )
        raise ClaimLostError(
            f"ledger.{op}: drop {drop_id} is no longer this host's claim: {why}; not applied",
            drop_id=drop_id,
        )

    def beat(self, rows: Rows) -> int:
        """Our heartbeat; extends our unexpired leases; returns how many."""
        now = self.clock()
        return rows.beat(self.host, now, now + self.lease_s)
