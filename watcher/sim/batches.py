"""The simulator's batches: their files (name, size, sha256 only, never the bytes) and delete jobs.

Safe from any thread. Imports no watcher module outside sim/.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from watcher.sim.runs import InputFile

FIRST_BATCH_ID: Final = 1001  # not 1: an id confused with a counter or an index shows up
OWNER: Final = "sim-user"
MOUNT_POINT: Final = "Instabase Drive"
DEFAULT_LIST_PAGE: Final = 100


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What the simulator keeps of an uploaded file: no bytes, only their count and digest."""

    size: int
    sha256: str
    modified_ms: int


@dataclass(slots=True, kw_only=True)
class Batch:
    id: int
    name: str
    workspace: str | None
    created_ms: int
    updated_ms: int
    files: dict[str, StoredFile] = field(default_factory=dict)

    @property
    def path_suffix(self) -> str:
        return f"batches/{self.id}"

    def full_path(self, filename: str) -> str:
        """The file's path on the (simulated) AI Hub filesystem."""
        workspace = self.workspace or OWNER
        return f"sim-org/{workspace}/fs/{MOUNT_POINT}/{self.path_suffix}/{filename}"

    def info(self) -> dict[str, Any]:
        """The spec's `batchInfo`."""
        return {
            "id": self.id,
            "name": self.name,
            "workspace": self.workspace or OWNER,
            "mount_point": MOUNT_POINT,
            "repo_owner": OWNER,
            "batch_owner": OWNER,
            "created_at_ms": self.created_ms,
            "updated_at_ms": self.updated_ms,
            "path_suffix": self.path_suffix,
        }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def encode_token(offset: int) -> str:
    """An opaque next_page_token for a file listing."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def decode_token(token: str) -> int | None:
    """The offset in a token from encode_token, or None when it is not one."""
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except ValueError:
        return None
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit():
        return None
    return int(number)


class BatchStore:
    """Batches by id, their files by name, and the jobs that deleted them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[int, Batch] = {}
        self._next_id = FIRST_BATCH_ID
        self._jobs: dict[str, str] = {}  # job id -> state

    def create(self, name: str, workspace: str | None) -> int:
        """A new empty batch; its id."""
        now = _now_ms()
        with self._lock:
            batch_id = self._next_id
            self._next_id += 1
            self._batches[batch_id] = Batch(
                id=batch_id, name=name, workspace=workspace, created_ms=now, updated_ms=now
            )
        return batch_id

    def exists(self, batch_id: int) -> bool:
        with self._lock:
            return batch_id in self._batches

    def info(self, batch_id: int) -> dict[str, Any] | None:
        """The batch's `batchInfo`, or None when there is no such batch."""
        with self._lock:
            batch = self._batches.get(batch_id)
            return None if batch is None else batch.info()

    def listing(
        self, *, workspace: str | None, username: str | None, limit: int | None, offset: int
    ) -> list[dict[str, Any]]:
        """`batchInfo` of the batches that match, oldest first, one page."""
        with self._lock:
            infos = [b.info() for b in self._batches.values()]
        if workspace is not None:
            infos = [i for i in infos if i["workspace"] == workspace]
        if username is not None:
            infos = [i for i in infos if i["batch_owner"] == username]
        return infos[offset : None if limit is None else offset + limit]

    def delete(self, batch_id: int) -> str | None:
        """Delete the batch and its files at once; the id of the (already COMPLETE) job, or None."""
        with self._lock:
            if self._batches.pop(batch_id, None) is None:
                return None
            job_id = str(uuid.uuid4())
            self._jobs[job_id] = "COMPLETE"
        return job_id

    def job_state(self, job_id: str) -> str | None:
        with self._lock:
            return self._jobs.get(job_id)

    def put_file(self, batch_id: int, filename: str, size: int, sha256: str) -> bool:
        """Store (or overwrite) a file's size and digest; False when the batch is gone."""
        now = _now_ms()
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return False
            batch.files[filename] = StoredFile(size, sha256, now)
            batch.updated_ms = now
        return True

    def delete_file(self, batch_id: int, filename: str) -> str | None:
        """Remove one file; the id of the (already COMPLETE) job, or None when there is no such
        file. Raises KeyError when there is no such batch."""
        now = _now_ms()
        with self._lock:
            batch = self._batches[batch_id]
            if batch.files.pop(filename, None) is None:
                return None
            batch.updated_ms = now
            job_id = str(uuid.uuid4())
            self._jobs[job_id] = "COMPLETE"
        return job_id

    def files_page(
        self, batch_id: int, offset: int, page_size: int
    ) -> tuple[list[dict[str, Any]], bool] | None:
        """One page of the spec's listBatchFilesResponse nodes (by name) and whether more follow;
        None when there is no such batch."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return None
            names = sorted(batch.files)
            page = [(name, batch.files[name]) for name in names[offset : offset + page_size]]
            nodes = [_node(batch, name, f) for name, f in page]
        return nodes, offset + page_size < len(names)

    def inputs(self, batch_id: int) -> tuple[InputFile, ...] | None:
        """The batch's files now, by name, as a run's inputs; None when there is no such batch."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return None
            files = sorted(batch.files.items())
        return tuple(InputFile(name, f.size, f.sha256) for name, f in files)

    def full_path(self, batch_id: int, filename: str) -> str:
        """Where a batch file lives on the simulated filesystem (the batch may be gone)."""
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            return f"sim-org/{OWNER}/fs/{MOUNT_POINT}/batches/{batch_id}/{filename}"
        return batch.full_path(filename)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every batch: its batchInfo plus `files`, {name: {"size", "sha256"}}."""
        with self._lock:
            out = []
            for batch in self._batches.values():
                data = batch.info()
                data["files"] = {
                    name: {"size": f.size, "sha256": f.sha256}
                    for name, f in sorted(batch.files.items())
                }
                out.append(data)
            return out


def _node(batch: Batch, name: str, stored: StoredFile) -> dict[str, Any]:
    return {
        "full_path": batch.full_path(name),
        "metadata": {
            "node_type": "file",
            "size": stored.size,
            "modified_timestamp": stored.modified_ms // 1000,
        },
        "perms": {"can_read": True, "can_write": True, "can_delete": True},
        "name": name,
    }
