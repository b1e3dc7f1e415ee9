"""What a drop's submission sends: the run call (deployment, body fields) and, for upload rules,
the upload plan (batch, files, remote names, sizes).

Built once here for the submitter, the uploader's checks, `explain` and `run --dry-run`, so what
they show is what is sent. Pure: imports the hub's request builder, naming and the core.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watcher.config import Rule
from watcher.hub.requests import HubRequest, run_request
from watcher.model import DropFile
from watcher.pipeline.naming import batch_name, naming_problem, remote_name
from watcher.pipeline.tags import run_settings


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCall:
    """The arguments of `HubClient.run_deployment` for one drop."""

    deployment_id: str
    input_dir: str | None
    batch_id: int | None
    output_dir: str | None
    version: str | None
    settings: dict[str, Any]

    def kwargs(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "input_dir": self.input_dir,
            "batch_id": self.batch_id,
            "output_dir": self.output_dir,
            "version": self.version,
            "settings": self.settings,
        }

    def request(self) -> HubRequest:
        """The request `run_deployment` sends for this call (method, path, body)."""
        return run_request(**self.kwargs())


def run_call(
    rule: Rule,
    *,
    drop_id: str,
    deployment_id: str,
    input_dir: str | None,
    batch_id: int | None,
    output_dir: str | None,
) -> RunCall:
    """The run call of a drop: its folder or batch, the rendered output_dir, the rule's version
    and settings plus the drop tag."""
    return RunCall(
        deployment_id=deployment_id,
        input_dir=input_dir,
        batch_id=batch_id,
        output_dir=output_dir,
        version=rule.version,
        settings=run_settings(rule, drop_id),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedFile:
    """One file of an upload: where it is in the drop, its name in the batch, how it goes."""

    rel: str
    name: str
    size: int
    parts: int  # 1: one PUT; more: a multipart session of this many parts (at our part size)


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadPlan:
    """What the uploader would do for a drop: one batch, these files; or why it cannot."""

    batch_name: str
    workspace: str | None
    files: tuple[PlannedFile, ...]
    problem: str | None  # set: the drop is rejected before anything is uploaded

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def as_dict(self, *, max_files: int | None = None) -> dict[str, Any]:
        """JSON-ready; with `max_files`, only that many files are listed (`file_count` has all)."""
        listed = self.files if max_files is None else self.files[:max_files]
        return {
            "batch_name": self.batch_name,
            "workspace": self.workspace,
            "file_count": len(self.files),
            "files": [
                {"rel": f.rel, "name": f.name, "size": f.size, "parts": f.parts} for f in listed
            ],
            "bytes": self.total_bytes,
            "problem": self.problem,
        }


def upload_plan(rule: Rule, *, drop: str, drop_id: str, files: Sequence[DropFile]) -> UploadPlan:
    """The upload of a drop of `rule` with these files (as detected)."""
    single_max, part_size = rule.upload.single_put_max_bytes, rule.upload.part_size_bytes
    planned = tuple(
        PlannedFile(
            rel=f.rel,
            name=remote_name(f.rel),
            size=f.size,
            parts=1 if f.size <= single_max else max(1, math.ceil(f.size / part_size)),
        )
        for f in files
    )
    return UploadPlan(
        batch_name=batch_name(rule.name, drop, drop_id),
        workspace=rule.upload.workspace,
        files=planned,
        problem=plan_problem(files, rule),
    )


def plan_problem(files: Sequence[DropFile], rule: Rule) -> str | None:
    """Why this drop cannot be uploaded at all (checked before anything is sent), or None."""
    if not files:
        return "the drop has no files to upload"
    limit = rule.upload.max_file_bytes
    too_big = [f for f in files if f.size > limit]
    if too_big:
        names = ", ".join(f"{f.rel} ({f.size} B)" for f in too_big[:10])
        return f"over the upload limit of {limit} bytes per file (upload.max_file_bytes): {names}"
    return naming_problem(f.rel for f in files)
