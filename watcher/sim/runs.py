"""The simulator's runs: creation, lazily computed status, overrides, and the filtered run list.

Imports no other watcher module: the run statuses below are the simulator's own copy of the
spec's enum on purpose, so a wrong status in the client's code can't be mirrored here.
"""

from __future__ import annotations

import bisect
import copy
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

# The spec's run status enum (components/schemas/run/status): CANCELLED, COMPLETE, FAILED,
# PAUSED, RUNNING, STOPPED_AT_CHECKPOINT. Deliberately not shared with watcher.model or hub/.
RUNNING: Final = "RUNNING"
COMPLETE: Final = "COMPLETE"
FAILED: Final = "FAILED"
# Statuses after which a run has a finish_timestamp.
FINISHED_STATUSES: Final = frozenset({"CANCELLED", COMPLETE, FAILED})

NS_PER_S: Final = 1_000_000_000
_APP_NAMESPACE: Final = uuid.UUID("5d6b1c1e-6a43-4f0e-9a8e-6b1f1c0d2a7e")


def app_id_for(deployment_id: str) -> str:
    # Stable across restarts so tests and the demo can filter on it.
    return str(uuid.uuid5(_APP_NAMESPACE, deployment_id))


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file a run saw when it started: its path in the batch or under input_dir."""

    path: str
    size: int
    sha256: str | None = None  # known for batch files, not for drive files

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(slots=True, kw_only=True)
class Run:
    id: str
    deployment_id: str
    app_id: str
    input_dir: str | None
    batch_id: int | None
    output_dir: str | None
    version: str | None
    settings: dict[str, Any] | None
    tags: tuple[str, ...]
    start_ns: int
    duration_ns: int  # decided at creation, so later option changes don't rewrite history
    final_status: str
    final_msg: str | None
    inputs: tuple[InputFile, ...] = ()  # the batch's files, or input_dir's files on the drive
    override_status: str | None = None
    override_finish_ns: int | None = None

    def status_at(self, now_ns: int) -> tuple[str, int | None, str | None]:
        """(status, finish_timestamp, msg) at `now_ns`: computed lazily instead of with timers."""
        if self.override_status is not None:
            return self.override_status, self.override_finish_ns, None
        finish_ns = self.start_ns + self.duration_ns
        if now_ns >= finish_ns:
            return self.final_status, finish_ns, self.final_msg
        return RUNNING, None, None

    def to_spec(self, now_ns: int) -> dict[str, Any]:
        """The spec's `run` object as of `now_ns`."""
        status, finish_ns, msg = self.status_at(now_ns)
        return {
            "id": self.id,
            "status": status,
            "start_timestamp": self.start_ns,
            "finish_timestamp": finish_ns,
            "msg": msg,
            "batch_id": self.batch_id,
            "input_dir": self.input_dir,
            "app_id": self.app_id,
            "deployment_id": self.deployment_id,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunQuery:
    """The listRuns parameters, already validated; times in ns, None = no bound."""

    lo_ns: int
    hi_ns: int | None
    statuses: frozenset[str]
    deployment_id: str | None
    run_id: str | None
    app_id: str | None
    limit: int | None
    offset: int
    sort_by: Literal["start_timestamp", "status"]
    descending: bool


def _start_ns(run: Run) -> int:
    return run.start_ns


class RunStore:
    """Every created run, indexed by id and deployment; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: list[Run] = []  # in start_ns order (start_ns is strictly increasing)
        self._by_id: dict[str, Run] = {}
        self._by_deployment: dict[str, list[Run]] = {}
        self._last_start_ns = 0

    def create(
        self,
        deployment_id: str,
        fields: dict[str, Any],
        *,
        run_seconds: float,
        failed: bool,
        inputs: tuple[InputFile, ...] = (),
    ) -> Run:
        """Store a new run from a validated runDeployment body."""
        settings = fields.get("settings")
        tags = tuple(settings.get("tags") or ()) if isinstance(settings, dict) else ()
        with self._lock:
            # Strictly increasing start times keep self._runs sorted for bisect-based time filters.
            start_ns = max(time.time_ns(), self._last_start_ns + 1)
            self._last_start_ns = start_ns
            run = Run(
                id=str(uuid.uuid4()),
                deployment_id=deployment_id,
                app_id=app_id_for(deployment_id),
                input_dir=fields.get("input_dir"),
                batch_id=fields.get("batch_id"),
                output_dir=fields.get("output_dir"),
                version=fields.get("version"),
                settings=settings,
                tags=tags,
                start_ns=start_ns,
                duration_ns=max(0, round(run_seconds * NS_PER_S)),
                final_status=FAILED if failed else COMPLETE,
                final_msg="simulated run failure" if failed else None,
                inputs=inputs,
            )
            self._runs.append(run)
            self._by_id[run.id] = run
            self._by_deployment.setdefault(deployment_id, []).append(run)
        return run

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The spec `run` for `run_id` as of now, or None."""
        now_ns = time.time_ns()
        with self._lock:
            run = self._by_id.get(run_id)
            return None if run is None else run.to_spec(now_ns)

    def get_with_inputs(self, run_id: str) -> tuple[dict[str, Any], Run] | None:
        """The spec `run` for `run_id` as of now and the Run itself (read-only), or None."""
        now_ns = time.time_ns()
        with self._lock:
            run = self._by_id.get(run_id)
            return None if run is None else (run.to_spec(now_ns), run)

    def set_status(self, run_id: str, status: str) -> None:
        """Force a run's status from now on. Raises KeyError when no such run exists."""
        now_ns = time.time_ns()
        with self._lock:
            run = self._by_id[run_id]
            run.override_status = status
            run.override_finish_ns = now_ns if status in FINISHED_STATUSES else None

    def snapshot(self) -> list[dict[str, Any]]:
        """Every run in the spec `run` shape plus output_dir, version, settings and inputs."""
        now_ns = time.time_ns()
        with self._lock:
            out = []
            for run in self._runs:
                data = run.to_spec(now_ns)
                data["output_dir"] = run.output_dir
                data["version"] = run.version
                data["settings"] = copy.deepcopy(run.settings)
                data["inputs"] = [f.to_json() for f in run.inputs]
                out.append(data)
            return out

    def list(self, q: RunQuery) -> list[dict[str, Any]]:
        """One page of runs matching `q`, as spec `run` objects."""
        now_ns = time.time_ns()
        with self._lock:
            if q.run_id is not None:
                one = self._by_id.get(q.run_id)
                pool: list[Run] = [one] if one is not None else []
            elif q.deployment_id is not None:
                pool = self._by_deployment.get(q.deployment_id, [])
            else:
                pool = self._runs
            lo = bisect.bisect_left(pool, q.lo_ns, key=_start_ns)
            hi = len(pool) if q.hi_ns is None else bisect.bisect_right(pool, q.hi_ns, key=_start_ns)
            window = pool[lo:hi]
            picked = _pick(reversed(window) if q.descending else window, q, now_ns)
            if q.sort_by == "status":
                # A stable sort keeps the start-time order (as requested) within one status.
                picked.sort(key=lambda pair: pair[1], reverse=q.descending)
            end = None if q.limit is None else q.offset + q.limit
            return [run.to_spec(now_ns) for run, _ in picked[q.offset : end]]


def _pick(ordered: Iterable[Run], q: RunQuery, now_ns: int) -> list[tuple[Run, str]]:
    """The runs of `ordered` that pass the filters, each with its current status."""
    want = None if q.limit is None else q.offset + q.limit
    picked: list[tuple[Run, str]] = []
    for run in ordered:
        if q.deployment_id is not None and run.deployment_id != q.deployment_id:
            continue
        if q.app_id is not None and run.app_id != q.app_id:
            continue
        status = run.status_at(now_ns)[0]
        if q.statuses and status not in q.statuses:
            continue
        picked.append((run, status))
        # Sorting by start time: the window is already ordered, so stop at the page end.
        if q.sort_by == "start_timestamp" and want is not None and len(picked) >= want:
            break
    return picked
