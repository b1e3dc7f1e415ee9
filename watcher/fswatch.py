"""watchdog observers -> "this drop may have changed" hints on the loop; the only watchdog user.

Events are hints, never truth: the detector decides on scans. Handlers run on watchdog's threads
and only call `loop.call_soon_threadsafe` (the one thread -> loop bridge). Imports pure modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

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
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from watcher.settle import is_hidden, is_in_progress

try:
    from watchdog.observers.inotify import InotifyObserver as _InotifyObserver
except Exception:  # not Linux, or no usable libc: the platform's Observer, without hooks
    _InotifyObserver = None  # type: ignore[assignment, misc]


class _StopRaceFilter(logging.Filter):
    """Drop watchdog's error line for a read that was in flight while we stopped the observer.

    watchdog logs it at ERROR although nothing is wrong: the emitter thread was blocked in
    read() when stop() closed the inotify queue. An operator should not see an error for it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in str(record.msg)


logging.getLogger("watchdog.observers.inotify").addFilter(_StopRaceFilter())

# Hints delivered to the loop, as (kind, name):
#   drop      name = a top-level folder that may have changed (or appeared, or vanished)
#   root      a loose file at the top level changed (files mode)
#   gone      the watch folder itself was deleted or moved away
#   overflow  the kernel dropped events: rescan everything now
#   limit     the inotify watch limit was hit below the root: switch this rule to polling
HintKind = Literal["drop", "root", "gone", "overflow", "limit"]
Send = Callable[[HintKind, str], None]

# Same prefix as scan.BATCH_TEMP_PREFIX (kept literal: fswatch imports no adapter).
_BATCH_TEMP_PREFIX = ".aihub-batch-"

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

_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)


class WatchLimitError(OSError):
    """The kernel refused another inotify watch or instance (ENOSPC / EMFILE)."""


def is_watch_limit(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _LIMIT_ERRNOS


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
    if not top or top.startswith(_BATCH_TEMP_PREFIX):
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
            logging.getLogger(__name__).debug("fswatch handler failed", exc_info=True)

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


def native_observer(
    *, on_overflow: Callable[[], None], on_limit: Callable[[], None]
) -> BaseObserver:
    """The platform's native observer, told to report queue overflows and watch-limit hits.

    watchdog (7.x) rebuilds its watches after IN_Q_OVERFLOW but tells no handler that events
    were lost, and it skips sub-folders it could not watch (ENOSPC) silently. It also warns
    (RuntimeWarning, from its inotify thread) when `mkdir -p a/b/c` makes it add a watch it
    already holds; under `-W error` that kills the thread. The hooks wrap methods of the
    observer's own InotifyFD instance; on other versions or platforms they are simply absent
    and the periodic rescan is the safety net.
    """
    if _InotifyObserver is None:
        return Observer()
    observer = _InotifyObserver()
    fd = getattr(observer, "_inotify_fd", None)
    handle_event = getattr(fd, "handle_event", None)
    get_or_create_watch = getattr(fd, "_get_or_create_watch", None)
    if callable(handle_event):

        def _handle_event(event: Any) -> None:
            if getattr(event, "is_queue_overflow", False):
                on_overflow()
            handle_event(event)

        setattr(fd, "handle_event", _handle_event)  # noqa: B010 - instance attribute on purpose
    if callable(get_or_create_watch):

        def _get_or_create_watch(*args: Any, **kwargs: Any) -> Any:
            try:
                return get_or_create_watch(*args, **kwargs)
            except OSError as exc:
                if is_watch_limit(exc):
                    on_limit()
                raise

        setattr(fd, "_get_or_create_watch", _get_or_create_watch)  # noqa: B010
    add_callback = getattr(fd, "add_callback", None)
    fd_lock = getattr(fd, "_lock", None)
    watch_for_wd = getattr(fd, "_watch_for_wd", None)
    if callable(add_callback) and fd_lock is not None and isinstance(watch_for_wd, dict):

        def _add_callback(path: bytes, mask: Any, callback: Any, id_: Any) -> Any:
            # Re-adding a path this watch group already holds: take our old entry out first, so
            # watchdog re-registers it (same or new inode) instead of warning about it.
            wd = getattr(callback, "_active_callbacks_by_path", {}).get(path)
            if wd is not None:
                with fd_lock:
                    held = watch_for_wd.get(wd)
                    if held is not None:
                        held.callbacks.pop(id_, None)
            return add_callback(path, mask, callback, id_)

        setattr(fd, "add_callback", _add_callback)  # noqa: B010
    return observer


# One name -> implementation table for the `observer:` setting.
OBSERVERS: dict[str, Callable[..., FsWatch]] = {
    "inotify": InotifyWatch,
    "polling": PollingWatch,
}
