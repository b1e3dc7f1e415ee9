"""`Ledger`: the one interface the pipeline and the CLI use, over a storage backend (SQLite, or
PostgreSQL when the `postgres` extra is installed): `LedgerBase` (opening, reads) and the writes.

Each call is one read or write transaction. Imports only the core (`watcher.model`) and this
package; never config, hub, fs, pipeline or detect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from watcher.errors import LedgerError
from watcher.ledger import transitions
from watcher.ledger.backend import Rows
from watcher.ledger.claims import FENCED, ClaimLostError, Claims
from watcher.ledger.copying import Copied, copy_rows
from watcher.ledger.opening import LedgerBase
from watcher.model import Drop, DropFile, DropState, StateCount, SubmittedRun

P = ParamSpec("P")
T = TypeVar("T")


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _record_or_theirs(rows: Rows, *, rule: str, drop: str, **kw: Any) -> Drop:
    """`transitions.record_ready`, unless another host recorded the drop a moment ago."""
    theirs = rows.find_active(rule, drop)
    if theirs is None or theirs.state is DropState.DETECTED:
        try:
            return transitions.record_ready(rows, rule=rule, drop=drop, **kw)
        except RuntimeError:
            # Each statement sees the latest commits: theirs may have landed just now.
            theirs = rows.find_active(rule, drop)
            if theirs is None:
                raise
    return theirs


class Ledger(LedgerBase):
    """The drop ledger: one row per drop, in one SQLite file (WAL, synchronous=FULL) or in a
    PostgreSQL schema.

    Every write method is one transaction and is durable when it returns. `batch()` groups
    several writes into one transaction. Impossible transitions raise RuntimeError (a bug); an
    unusable database raises LedgerError.
    """

    # --- writes: each is one transaction, or part of the enclosing batch() --------------------
    # What each one checks and writes is documented in `transitions`.

    def _write(self, op: Callable[Concatenate[Rows, P], T], *a: P.args, **k: P.kwargs) -> T:
        with self._backend.write() as rows:
            if self._claims is not None and op.__name__ in FENCED:
                # Every fenced operation takes the drop id first.
                self._claims.fence(rows, str(a[0]), op.__name__)
            return op(rows, *a, **k)

    def record_ready(
        self,
        *,
        rule: str,
        drop: str,
        fingerprint: str,
        input_dir: str | None,
        deployment_id: str,
        now: float | None = None,
        local_path: str | None = None,
        marker_path: str | None = None,
        state: DropState = DropState.READY,
        files: Sequence[DropFile] = (),
    ) -> Drop:
        """A new row in `state` (ready, waiting_remote or uploading), with its `files`.
        RuntimeError if (rule, drop) has another live row (the caller decides first); on a
        shared ledger that row is returned instead: another host recorded the drop first."""
        op = transitions.record_ready if self._claims is None else _record_or_theirs
        return self._write(
            op,
            rule=rule,
            drop=drop,
            fingerprint=fingerprint,
            input_dir=input_dir,
            deployment_id=deployment_id,
            now=_now(now),
            local_path=local_path,
            marker_path=marker_path,
            state=state,
            files=files,
        )

    def update_fingerprint(
        self,
        drop_id: str,
        fingerprint: str,
        *,
        now: float | None = None,
        files: Sequence[DropFile] = (),
    ) -> Drop:
        """The content of a drop not yet submitted changed: keep its row (a new batch)."""
        return self._write(
            transitions.update_fingerprint, drop_id, fingerprint, now=_now(now), files=files
        )

    def resubmit(
        self,
        drop_id: str,
        fingerprint: str,
        *,
        input_dir: str | None = None,
        deployment_id: str | None = None,
        now: float | None = None,
        state: DropState = DropState.READY,
        files: Sequence[DropFile] = (),
    ) -> Drop:
        """on_change=resubmit: archive the terminal row; a new row in `state` for the same drop."""
        return self._write(
            transitions.resubmit,
            drop_id,
            fingerprint,
            input_dir=input_dir,
            deployment_id=deployment_id,
            now=_now(now),
            state=state,
            files=files,
        )

    def archive(self, drop_id: str, *, now: float | None = None) -> None:
        """Retire a row (folder gone after terminal, or gone before submission) so that a
        same-named new drop gets a fresh row. Idempotent. RuntimeError while in flight."""
        self._write(transitions.archive, drop_id, now=_now(now))

    def begin_submit(
        self,
        drop_id: str,
        *,
        now: float,
        input_dir: str | None = None,
        deployment_id: str | None = None,
    ) -> Drop:
        """Record the intent to POST (ready -> submitting), durable before the request is sent.
        input_dir/deployment_id, when given, replace the stored ones (the rule changed). On a
        shared ledger the drop must be this host's claim; it records the host as submitter."""
        return self._write(
            transitions.begin_submit,
            drop_id,
            now=now,
            input_dir=input_dir,
            deployment_id=deployment_id,
            submitted_by=self.host,
        )

    def begin_submit_many(self, drop_ids: Iterable[str], *, now: float) -> list[Drop]:
        """`begin_submit` for each id in ONE transaction (all or nothing)."""
        return self._write(transitions.begin_submit_many, drop_ids, now=now)

    def mark_submitted(
        self, drop_id: str, *, run_id: str, run_status: str, response: str, now: float
    ) -> Drop:
        """The run exists (POST answered, or reconcile adopted it): submitting -> submitted."""
        return self._write(
            transitions.mark_submitted,
            drop_id,
            run_id=run_id,
            run_status=run_status,
            response=response,
            now=now,
        )

    def mark_submitted_many(self, results: Iterable[SubmittedRun], *, now: float) -> list[Drop]:
        """`mark_submitted` for each result in ONE transaction (all or nothing). On a shared
        ledger, a drop no longer ours is left out (its new holder adopts the run by tag)."""
        if self._claims is None:
            return self._write(transitions.mark_submitted_many, results, now=now)
        done: list[Drop] = []
        with self._backend.write() as rows:
            for r in results:
                try:
                    self._claims.fence(rows, r.drop_id, "mark_submitted")
                except ClaimLostError:
                    continue
                done.append(transitions.mark_submitted_many(rows, [r], now=now)[0])
        return done

    def schedule_retry(
        self, drop_id: str, *, next_attempt_at: float, error: str, now: float
    ) -> Drop:
        """The attempt failed retryably: submitting -> ready, due at next_attempt_at."""
        return self._write(
            transitions.schedule_retry,
            drop_id,
            next_attempt_at=next_attempt_at,
            error=error,
            now=now,
        )

    def mark_rejected(self, drop_id: str, *, error: str, response: str | None, now: float) -> Drop:
        """Permanent 4xx: (submitting|ready) -> rejected; keeps the old response if None."""
        return self._write(
            transitions.mark_rejected, drop_id, error=error, response=response, now=now
        )

    def mark_failed(self, drop_id: str, *, error: str, now: float) -> Drop:
        """Retries exhausted (or given up): (submitting|ready) -> failed."""
        return self._write(transitions.mark_failed, drop_id, error=error, now=now)

    def release(self, drop_id: str, *, now: float) -> Drop:
        """The POST was never sent (hub paused, shutting down): submitting -> ready, due now,
        and the attempt is not counted (attempts-1, attempt_id/intent_at cleared)."""
        return self._write(transitions.release, drop_id, now=now)

    def set_run_status(self, drop_id: str, *, run_status: str, response: str, now: float) -> Drop:
        """Record a polled run status: COMPLETE->complete, FAILED->run_failed,
        CANCELLED->cancelled, STOPPED_AT_CHECKPOINT->needs_review, else stays submitted."""
        return self._write(
            transitions.set_run_status, drop_id, run_status=run_status, response=response, now=now
        )

    def mark_post_action_done(self, drop_id: str, *, now: float | None = None) -> None:
        """The post-run action (keep/delete/move) ran; only after a terminal state. On a shared
        ledger the drop's claim ends with it: nothing is left to do."""
        with self._backend.write() as rows:
            if self._claims is not None:
                self._claims.fence(rows, drop_id, "mark_post_action_done")
            transitions.mark_post_action_done(rows, drop_id, now=_now(now))
            if self._claims is not None:
                self._claims.let_go(rows, drop_id)

    def rearm(self, drop_id: str, *, now: float, state: DropState = DropState.READY) -> Drop:
        """`aihub-watcher retry`: failed/rejected -> `state` (its rule's first stage).

        Raises:
            LedgerError: no such drop, it is archived, or it is not failed/rejected.
        """
        return self._write(transitions.rearm, drop_id, now=now, state=state)

    def copy_from(self, source: LedgerBase) -> Copied:
        """`ledger migrate`: every row of `source` (drops, archived ones, files) into this
        ledger, in one transaction, with ids, states and runs kept.

        Raises:
            LedgerError: this ledger already holds drops (it would mix two histories), or a
                storage error (nothing is written).
        """
        with source._backend.read() as rows, self._backend.write() as target:
            existing = len(target.all_drops(include_archived=True))
            if existing:
                raise LedgerError(
                    f"ledger {self.location} already holds {existing} drops: migrate into "
                    "an empty database or schema"
                )
            return copy_rows(rows, target)

    # --- claims: a ledger several hosts share ------------------------------------------------

    def act_as(self, host: str, *, lease_s: float, clock: Callable[[], float] = time.time) -> None:
        """Work as `host` on a shared ledger from now on: `due` and `take` claim the rows they
        return, and each change to a claimed drop checks the claim (ClaimLostError)."""
        self._claims = Claims(host, lease_s, clock)
        # A host frozen inside a transaction must not hold the others' rows beyond its lease.
        limit = getattr(self._backend, "limit_idle_transactions", None)
        if limit is not None:
            limit(max(1.0, lease_s / 3))

    @property
    def host(self) -> str | None:
        """The host this ledger works as (`act_as`); None on a single host."""
        return None if self._claims is None else self._claims.host

    def due(
        self,
        now: float,
        limit: int = 1000,
        *,
        skip_rules: Collection[str] = (),
        priority: Mapping[str, int] | None = None,
    ) -> list[Drop]:
        """As `DueQueue.due`; on a shared ledger, only the drops this host holds or now claims
        (FOR UPDATE SKIP LOCKED: never one another host is claiming)."""
        if self._claims is None:
            return super().due(now, limit, skip_rules=skip_rules, priority=priority)
        with self._backend.write() as rows:
            return self._claims.take(
                rows,
                (DropState.READY,),
                due_at=now,
                limit=limit,
                skip_rules=skip_rules,
                priority=priority,
            )

    def next_due_at(self, *, skip_rules: Collection[str] = ()) -> float | None:
        """As `DueQueue.next_due_at`; on a shared ledger, among the drops this host may claim
        (another host's claimed backlog would wake the submit loop for nothing)."""
        if self._claims is None:
            return super().next_due_at(skip_rules=skip_rules)
        with self._backend.read() as rows:
            return rows.next_due_for(self._claims.host, self._claims.clock(), skip_rules=skip_rules)

    def take(self, *states: DropState, only_new: bool = False) -> list[Drop]:
        """The live rows in `states` this host works on, oldest first: every one on a single
        host; on a shared ledger, those it holds plus those nobody holds or whose holder's
        lease ended, claimed now. `only_new`: only the ones claimed now (a takeover)."""
        if self._claims is None:
            return [] if only_new else self.in_state(*states)
        with self._backend.write() as rows:
            return self._claims.take(rows, states, only_new=only_new)

    def claim(self, drop_id: str) -> bool:
        """Make this drop this host's work: True when it is (always on a single host), False
        while another host's lease on it holds."""
        if self._claims is None:
            return True
        with self._backend.write() as rows:
            return self._claims.claim_one(rows, drop_id)

    def check_claim(self, drop_id: str) -> float | None:
        """Right before a request that cannot be fenced (the POST of a run): the drop must
        still be this host's claim. Returns when our lease on it ends (time.time()), so the
        request is not sent after that; None on a single host or for an unclaimed drop.

        Raises:
            ClaimLostError: another host took it over, or our lease on it ended.
        """
        if self._claims is None:
            return None
        with self._backend.read() as rows:
            return self._claims.fence(rows, drop_id, "post")

    def heartbeat(self) -> int:
        """This host is alive: extend its unexpired leases (0 on a single host)."""
        if self._claims is None:
            return 0
        with self._backend.write() as rows:
            return self._claims.beat(rows)


def state_counts(ledger: Ledger, now: float) -> list[StateCount]:
    """Drops per (rule, state) in one read (archived ones included, as in `counts()`), with how
    many live ready ones are due by `now` and the oldest live one's created_at: what a metrics
    scrape reads. A function beside the class, which is at its size limit."""
    with ledger._backend.read() as rows:
        return rows.state_counts(now)
