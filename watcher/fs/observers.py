"""watchdog observers for one rule's watch root, and the one name -> implementation table.

The only watchdog user (with `watcher.fs.inotify`). Handlers run on watchdog's threads and only
call the rule's `send` (a `Bridge`). Imports only its own package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

from watcher.fs.hints import Send, hint_for_path
from watcher.fs.inotify import WatchLimitError, is_watch_limit, native_observer

# Only what can change a drop. Leaving out opened/closed-without-write keeps our own scans (and
# readers of submitted drops) from waking the inotify thread at all.
_EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileModifiedEvent,
    FileClosedEvent,
]


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's dispatcher thread; must never raise (that would kill the thread)."""

    def __init__(self, root: str, send: Send, *, files_mode: bool, marker: str | None) -> None:
        self._root = root
        self._send = send
        self._files_mode = files_mode
        self._marker = marker

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch(event)
        except Exception:  # a lost hint is covered by the next rescan
            # (The logger keeps the name it had before the fs package: log filters know it.)
            logging.getLogger("watcher.fswatch").debug("fswatch handler failed", exc_info=True)

    def _dispatch(self, event: FileSystemEvent) -> None:
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        if paths[0] == self._root and event.event_type in ("deleted", "moved"):
            self._send("gone", "")
            return
        for path in paths:
            hint = hint_for_path(
                self._root,
                path,
                is_directory=event.is_directory,
                files_mode=self._files_mode,
                marker=self._marker,
            )
            if hint is not None:
                self._send(*hint)


class FsWatch(Protocol):
    """One rule's change notifications on one watch root."""

    needs_polling: bool  # True: no events come; the detector lists the root every poll interval

    def start(self) -> None: ...  # blocking; WatchLimitError when the kernel refuses watches
    def stop(self) -> None: ...  # blocking; joins every thread it started
    def healthy(self) -> bool: ...


class InotifyWatch:
    """A recursive native observer (inotify on Linux) on one watch root."""

    needs_polling = False

    def __init__(
        self, root: str, *, send: Send, files_mode: bool, marker: str | None, **_: Any
    ) -> None:
        self._root = root
        self._send = send
        self._handler = _Handler(root, send, files_mode=files_mode, marker=marker)
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        observer = native_observer(
            on_overflow=lambda: self._send("overflow", ""),
            on_limit=lambda: self._send("limit", ""),
        )
        try:
            observer.schedule(self._handler, self._root, recursive=True, event_filter=_EVENT_FILTER)
            observer.start()
        except OSError as exc:
            _stop_observer(observer)
            if is_watch_limit(exc):
                raise WatchLimitError(exc.errno, exc.strerror, self._root) from exc
            raise
        except BaseException:
            _stop_observer(observer)
            raise
        self._observer = observer

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            _stop_observer(observer)

    def healthy(self) -> bool:
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        # The emitter stops itself when the root is deleted; a dead one means no more events.
        if not all(e.is_alive() for e in list(observer.emitters)):
            return False
        reader = getattr(observer, "_inotify_fd", None)  # the thread that reads inotify
        return not isinstance(reader, threading.Thread) or reader.is_alive()


class PollingWatch:
    """No watchdog at all: the detector lists the root every `poll_interval_seconds` instead.

    watchdog's recursive PollingObserver re-stats every file every interval (206 MB, 24.5 % CPU on
    100,000 files here); listing only the top level and drops still settling costs next to nothing.
    """

    needs_polling = True

    def __init__(self, root: str, **_: Any) -> None:
        self._root = root

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def healthy(self) -> bool:
        return True


def _stop_observer(observer: BaseObserver) -> None:
    observer.stop()
    with contextlib.suppress(RuntimeError):  # never started
        observer.join(timeout=10)


# One name -> implementation table for the `observer:` setting.
OBSERVERS: dict[str, Callable[..., FsWatch]] = {
    "inotify": InotifyWatch,
    "polling": PollingWatch,
}
