"""`explain`: which rule and drop a path belongs to, the exact request, whether the drop is
ready now (and why not), and what the ledger says. The CLI only prints the `Explanation`.

Reads the ledger read-only and may HEAD files on AI Hub (the remote check); writes nothing.
Imports config, fs, hub, ledger, the pipeline's request builders and the app's helpers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from watcher.app.ledgers import no_ledger_yet, open_ledger
from watcher.app.locate import Located, locate, match_rule
from watcher.app.readiness import (
    Blocker,
    DropView,
    hold_blockers,
    last_change_of,
    local_blockers,
    loose_blocker,
    remote_blocker,
    unchecked_blocker,
)
from watcher.config import Config, Rule, input_dir_for, output_dir_for
from watcher.errors import LedgerError
from watcher.fs.scan import list_root, scan_drop
from watcher.hub.client import HubClient
from watcher.hub.errors import HubError
from watcher.ledger import ledger_path
from watcher.ledger.transitions import BEFORE_SUBMIT
from watcher.model import Drop, DropFile, DropState, Scan
from watcher.pipeline.intake import escaped, name_problem
from watcher.pipeline.request import run_call, upload_plan

Verdict = Literal["ready", "submitted", "waiting", "no_rule", "no_drop"]
# A drop the daemon has not recorded has no id yet; its tag shows this instead.
NEW_DROP_ID = "<new drop id>"

ClientFactory = Callable[[], HubClient]


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerView:
    """The drop's ledger row, as `status` shows it."""

    drop_id: str
    state: str
    run_id: str | None
    run_status: str | None
    attempts: int
    last_error: str | None
    batch_id: int | None
    archived: bool = False  # a past row: the drop folder went away


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Everything `explain` says about one path. `verdict`: ready (or already `ready` in the
    ledger), submitted (or later), waiting (see `blockers`), no_rule, no_drop (see `reason`)."""

    path: str
    verdict: Verdict
    reason: str | None = None
    rule: str | None = None
    watch: str | None = None
    mode: str | None = None  # the rule's `drop:` (folder | files)
    source: str | None = None
    drop: str | None = None
    drop_kind: str | None = None  # folder | marker | loose | gone
    drop_path: str | None = None
    note: str | None = None
    files: int | None = None
    bytes: int | None = None
    request: dict[str, Any] | None = None  # method, path, body
    upload: dict[str, Any] | None = None  # the upload plan (source: upload)
    request_note: str | None = None
    blockers: tuple[Blocker, ...] = ()
    ledger: LedgerView | None = None
    ledger_note: str | None = None
    checks: tuple[str, ...] = field(default=())  # what was looked at for readiness

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain(
    config: Config, path: Path, *, now: float | None = None, client: ClientFactory | None = None
) -> Explanation:
    """Explain `path` under `config`. `client` builds a hub client for the remote check (None:
    skip it; the remote copy is reported as not checked)."""
    now = time.time() if now is None else now
    matched = match_rule(config, path)
    if isinstance(matched, str):
        return Explanation(path=escaped(str(path)), verdict="no_rule", reason=escaped(matched))
    rule, rel = matched
    loc = locate(rule, rel)
    base: dict[str, Any] = {
        "path": escaped(str(path)),
        "rule": rule.name,
        "watch": str(rule.watch),
        "mode": rule.drop,
        "source": rule.source,
    }
    if loc.drop is None:
        if loc.kind == "in_progress":
            blocker = Blocker(code="in_progress", message=loc.note or "in progress")
            return Explanation(**base, verdict="waiting", blockers=(blocker,))
        return Explanation(**base, verdict="no_drop", reason=loc.note)
    base.update(drop=loc.drop, drop_kind=loc.kind, drop_path=str(rule.watch / loc.drop))
    if loc.kind == "loose":
        return _explain_loose(rule, loc.drop, base, now)
    bad_name = name_problem(loc.drop)
    if bad_name is not None:
        return _explain_bad_name(config, rule, loc.drop, bad_name, base)
    row, ledger_note = read_ledger(config, rule.name, loc.drop)
    base.update(ledger=_ledger_view(row), ledger_note=ledger_note, note=loc.note)
    scan = scan_drop(str(rule.watch), loc.drop, extra=rule.ignore)
    if scan is None and row is None:
        return _explain_gone(config, rule, loc.drop, base)
    if scan is not None:
        base.update(files=len(scan.files), bytes=scan.total_bytes())
    request, upload, request_note = _request(rule, loc.drop, row, scan)
    base.update(request=request, upload=upload, request_note=request_note)
    return _judge(rule, loc, row, scan, base, now=now, client=client)


def _judge(
    rule: Rule,
    loc: Located,
    row: Drop | None,
    scan: Scan | None,
    base: dict[str, Any],
    *,
    now: float,
    client: ClientFactory | None,
) -> Explanation:
    """The verdict: from the ledger once the daemon took the drop, else from the checks."""
    if row is not None and row.state not in BEFORE_SUBMIT | {DropState.DETECTED}:
        return Explanation(**base, verdict="submitted", checks=("ledger",))
    held = hold_blockers(rule, now)
    if row is not None and row.state is DropState.READY:
        verdict: Verdict = "waiting" if held else "ready"
        return Explanation(**base, verdict=verdict, blockers=tuple(held), checks=("ledger",))
    if row is not None and row.state is DropState.UPLOADING:
        note = row.last_error or "its files are going into an AI Hub batch"
        blocker = Blocker(code="uploading", message=f"uploading: {note}")
        return Explanation(**base, verdict="waiting", blockers=(blocker,), checks=("ledger",))
    assert loc.drop is not None
    if scan is None:
        blocker = Blocker(code="gone", message="the drop folder is gone")
        return Explanation(**base, verdict="waiting", blockers=(blocker,))
    view = DropView(
        rule=rule,
        root=rule.watch,
        drop=loc.drop,
        scan=scan,
        marked=bool(rule.ready_marker) and rule.drop == "folder" and _marked(rule, loc.drop),
        last_change=last_change_of(rule.watch, loc.drop, scan),
        now=now,
    )
    blockers = local_blockers(view)
    checks = ["local"]
    if rule.source == "drive" and rule.verify_remote and scan.files:
        checks.append("remote")
        input_dir = row.input_dir if row is not None and row.input_dir else None
        remote = _remote(client, input_dir or input_dir_for(rule, loc.drop), scan)
        if remote is not None:
            blockers.append(remote)
    blockers += held
    verdict = "waiting" if blockers else "ready"
    return Explanation(**base, verdict=verdict, blockers=tuple(blockers), checks=tuple(checks))


def _marked(rule: Rule, drop: str) -> bool:
    return os.path.isfile(rule.watch / f"{drop}{rule.ready_marker}")


def _remote(client: ClientFactory | None, input_dir: str, scan: Scan) -> Blocker | None:
    if client is None:
        return unchecked_blocker("skipped")
    try:
        hub = client()
    except Exception as exc:  # no token, a bad CA bundle: say so, never guess
        return unchecked_blocker(str(exc).split(";")[0])
    try:
        return remote_blocker(hub, input_dir, scan)
    except HubError as exc:
        return unchecked_blocker(f"AI Hub not reachable: {exc}")
    finally:
        hub.close()


def _request(
    rule: Rule, drop: str, row: Drop | None, scan: Scan | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """The request the submitter would send (and the upload plan), built by its own code."""
    drop_id = row.id if row is not None else NEW_DROP_ID
    notes = [] if row is not None else ["the drop id is assigned when the daemon records it"]
    try:
        output_dir = output_dir_for(rule, drop, now=datetime.now(UTC))
        input_dir = None
        if rule.source == "drive":
            input_dir = row.input_dir if row is not None and row.input_dir else None
            input_dir = input_dir or input_dir_for(rule, drop)
    except ValueError as exc:
        return None, None, f"the drop would be rejected: {exc}"
    batch_id = row.batch_id if row is not None else None
    call = run_call(
        rule,
        drop_id=drop_id,
        deployment_id=(row.deployment_id if row is not None else None) or rule.deployment_id,
        input_dir=input_dir,
        batch_id=batch_id,
        output_dir=output_dir,
    )
    plan = None
    if rule.source == "upload":
        files = [
            DropFile(rel=f.rel, size=f.size, mtime_ns=f.mtime_ns)
            for f in (scan.files if scan is not None else ())
        ]
        plan = upload_plan(rule, drop=drop, drop_id=drop_id, files=files).as_dict()
        if batch_id is None:
            notes.append("the body also gets the batch_id of the new batch")
    return call.request().as_dict(), plan, "; ".join(notes) or None


def _explain_loose(rule: Rule, name: str, base: dict[str, Any], now: float) -> Explanation:
    """Files mode: a loose file joins the next batch folder once the loose files settle."""
    listing = list_root(str(rule.watch), extra=rule.ignore)
    loose = dict(listing.files)
    last = 0.0
    for n in loose:
        try:
            st = os.stat(rule.watch / n, follow_symlinks=False)
        except OSError:
            continue
        last = max(last, st.st_mtime, st.st_ctime)
    blocker = loose_blocker(
        rule, name, loose, in_progress=bool(listing.in_progress), last=last, now=now
    )
    blockers = ([blocker] if blocker is not None else []) + hold_blockers(rule, now)
    note = (
        f"a loose file: the daemon moves it into a new batch folder (batch_name "
        f"{rule.batch_name!r}), which is then the drop; the request is known once it exists"
    )
    return Explanation(
        **base,
        verdict="waiting" if blockers else "ready",
        blockers=tuple(blockers),
        request_note=note,
        ledger_note="not seen yet (loose files are recorded as their batch folder)",
        checks=("local",),
    )


def _explain_bad_name(
    config: Config, rule: Rule, drop: str, problem: str, base: dict[str, Any]
) -> Explanation:
    """A drop folder whose name is not UTF-8: the daemon records it `rejected` under its
    escaped name (undecodable bytes as \\xNN) and never sends it; nothing will change until it
    is renamed."""
    shown = escaped(drop)
    row, ledger_note = read_ledger(config, rule.name, shown)
    base.update(
        drop=shown,
        drop_path=escaped(base["drop_path"]),
        ledger=_ledger_view(row),
        ledger_note=ledger_note,
        request_note=f"the drop would be rejected: {problem}",
    )
    blocker = Blocker(code="bad_name", message=problem)
    return Explanation(**base, verdict="waiting", blockers=(blocker,), checks=("local",))


def _explain_gone(config: Config, rule: Rule, drop: str, base: dict[str, Any]) -> Explanation:
    """No folder and no live row: the ledger's last archived row tells what became of it (a
    drop moved away after its run, or one that vanished before it was sent)."""
    gone = f"{rule.watch / drop} does not exist"
    past = _last_archived(config, rule.name, drop)
    if past is None:
        return Explanation(
            **base, verdict="no_drop", reason=f"{gone}, and the ledger does not know it"
        )
    base.update(ledger=_ledger_view(past), ledger_note=None)
    if past.state in BEFORE_SUBMIT | {DropState.DETECTED}:
        reason = f"{gone}; it went away before it was submitted (its archived row is {past.state})"
        return Explanation(**base, verdict="no_drop", reason=reason, checks=("ledger",))
    return Explanation(**base, verdict="submitted", checks=("ledger",))


def _last_archived(config: Config, rule: str, drop: str) -> Drop | None:
    """The most recently updated archived row of (rule, drop), read-only; None if none."""
    if no_ledger_yet(config):
        return None
    try:
        with open_ledger(config, readonly=True) as ledger:
            rows = [d for d in ledger.all_drops() if d.rule == rule and d.drop == drop]
    except LedgerError:
        return None
    return max(rows, key=lambda d: d.updated_at, default=None)


def read_ledger(config: Config, rule: str, drop: str) -> tuple[Drop | None, str | None]:
    """The live ledger row of (rule, drop), read-only; None with a note when there is none."""
    if no_ledger_yet(config):
        return None, f"not seen yet (no ledger at {ledger_path(config.state_dir)})"
    try:
        with open_ledger(config, readonly=True) as ledger:
            row = ledger.find_active(rule, drop)
    except LedgerError as exc:
        return None, f"ledger not readable: {exc}"
    return row, None if row is not None else "not seen yet"


def _ledger_view(row: Drop | None) -> LedgerView | None:
    if row is None:
        return None
    return LedgerView(
        drop_id=row.id,
        state=str(row.state),
        run_id=row.run_id,
        run_status=row.run_status,
        attempts=row.attempts,
        last_error=row.last_error,
        batch_id=row.batch_id,
        archived=row.archived,
    )
