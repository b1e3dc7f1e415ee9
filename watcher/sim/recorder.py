"""What the simulator saw: every request in memory, and optionally one JSONL line each.

Headers are never kept, so the Authorization token can't reach a record. Imports no watcher
module outside sim/.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

LOST: Final = 0  # recorded status of a request whose response was deliberately never sent


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedRequest:
    """One request as the simulator saw it; headers (and so the Authorization token) are never kept.

    `path` is the raw (still percent-encoded) request path; `status` is 0 when the response was
    deliberately lost (lose_response_rate).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    time: float

    def to_json(self) -> dict[str, Any]:
        """The JSONL record line for this request."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
            "status": self.status,
            "time": self.time,
        }


class Recorder:
    """The request log: appended on the loop thread, read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._file: IO[str] | None = None

    def open(self, path: Path | None) -> None:
        """Start appending JSONL lines to `path` (None: memory only)."""
        if path is not None:
            self._file = path.open("a", encoding="utf-8")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def add(
        self, *, method: str, path: str, query: dict[str, list[str]], body: Any, status: int
    ) -> None:
        entry = RecordedRequest(
            method=method, path=path, query=query, body=body, status=status, time=time.time()
        )
        with self._lock:
            self._requests.append(entry)
        if self._file is not None:
            # Flushed per line so the file is complete even when the process is killed.
            self._file.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
            self._file.flush()
