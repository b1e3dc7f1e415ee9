"""Observer events -> "this drop may have changed" hints, and the one thread -> loop bridge.

Events are hints, never truth: the detector decides on scans. No watchdog here (the handler in
`watcher.fs.observers` calls `hint_for_path` and `Bridge.send`). Imports only its own package.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Literal

from watcher.names import BATCH_TEMP_PREFIX, is_hidden, is_in_progress

# Hints delivered to the loop, as (kind, name):
#   drop      name = a top-level folder that may have changed (or appeared, or vanished)
#   root      a loose file at the top level changed (files mode)
#   gone      the watch folder itself was deleted or moved away
#   overflow  the kernel dropped events: rescan everything now
#   limit     the inotify watch limit was hit below the root: switch this rule to polling
HintKind = Literal["drop", "root", "gone", "overflow", "limit"]
Send = Callable[[HintKind, str], None]


class Bridge:
    """Hands hints from any thread to a callback on the loop, at most one pending per hint.

    A large copy makes thousands of events for the same drop; only the first one in flight
    crosses threads, the rest are dropped here (the drop is already marked dirty).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deliver: Callable[[HintKind, str], None]
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._lock = threading.Lock()
        self._pending: set[tuple[HintKind, str]] = set()
        self._closed = False

    def send(self, kind: HintKind, name: str) -> None:
        key = (kind, name)
        with self._lock:
            if self._closed or key in self._pending:
                return
            self._pending.add(key)
        try:
            self._loop.call_soon_threadsafe(self._flush, key)
        except RuntimeError:  # loop closed during shutdown: nobody is listening any more
            with self._lock:
                self._pending.discard(key)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pending.clear()

    def _flush(self, key: tuple[HintKind, str]) -> None:
        with self._lock:
            self._pending.discard(key)
            if self._closed:
                return
        self._deliver(*key)


def hint_for_path(
    root: str, path: str, *, is_directory: bool, files_mode: bool, marker: str | None
) -> tuple[HintKind, str] | None:
    """Map an event path to the hint it means (pure; None: nothing that can affect a drop)."""
    prefix = root.rstrip(os.sep) + os.sep
    if not path.startswith(prefix):
        return None
    top, sep, _ = path[len(prefix) :].partition(os.sep)
    if not top or top.startswith(BATCH_TEMP_PREFIX):
        return None
    if sep:  # something inside a top-level folder
        return None if is_hidden(top) else ("drop", top)
    if is_directory:
        if is_hidden(top) or is_in_progress(top):
            return None
        return ("drop", top)
    if files_mode:
        return ("root", "")
    if marker and top.endswith(marker) and len(top) > len(marker):
        return ("drop", top[: -len(marker)])
    return None  # a loose file in folder mode: never a drop
