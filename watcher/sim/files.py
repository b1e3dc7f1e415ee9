"""The AI Hub paths the simulator knows, for HEAD /v2/files/{path}: folders and files.

A run's input_dir and its parents become folders; tests register more with HubSim.add_path.
Imports no watcher module outside sim/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from watcher.sim.runs import InputFile


@dataclass(frozen=True, slots=True)
class FileInfo:
    size: int
    mtime: float


def path_key(path: str) -> str:
    return path.strip("/")


def _ancestors(key: str) -> Iterator[str]:
    parts = key.split("/")
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


class PathStore:
    """Known folders and files by path key (no leading or trailing slash); safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: set[str] = set()
        self._files: dict[str, FileInfo] = {}

    def add_folder(self, path: str) -> None:
        """Know `path` and each of its parents as a folder."""
        key = path_key(path)
        with self._lock:
            self._folders.update(_ancestors(key))

    def add_file(self, path: str, size: int) -> None:
        """Know `path` as a file of `size` bytes modified now, and its parents as folders."""
        key = path_key(path)
        with self._lock:
            self._files[key] = FileInfo(size, time.time())
            parent = key.rpartition("/")[0]
            if parent:
                self._folders.update(_ancestors(parent))

    def lookup(self, path: str) -> FileInfo | bool:
        """The file at `path`, else True for a known folder, else False."""
        key = path_key(path)
        with self._lock:
            return self._files.get(key) or key in self._folders

    def files_under(self, folder: str) -> dict[str, InputFile]:
        """The files known below `folder`, by path relative to it."""
        prefix = path_key(folder) + "/"
        with self._lock:
            return {
                key[len(prefix) :]: InputFile(key[len(prefix) :], info.size)
                for key, info in self._files.items()
                if key.startswith(prefix)
            }
