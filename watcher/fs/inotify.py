"""The native (inotify) observer, with our hooks on watchdog's internals; the kernel's limits.

Imports nothing from `watcher`. The watchdog 7.x internals hooked here are checked, one by one,
by tests/integration/test_fs_hooks.py, so an upgrade that renames one fails there, loudly.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any

from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

try:
    from watchdog.observers.inotify import InotifyObserver as _InotifyObserver
except Exception:  # not Linux, or no usable libc: the platform's Observer, without hooks
    _InotifyObserver = None  # type: ignore[assignment, misc]

# What watchdog's inotify emitter logs when a read was in flight while the observer stopped.
STOP_RACE_MESSAGE = "called when the thread is inactive"


class _StopRaceFilter(logging.Filter):
    """Drop watchdog's error line for a read that was in flight while we stopped the observer.

    watchdog logs it at ERROR although nothing is wrong: the emitter thread was blocked in
    read() when stop() closed the inotify queue. An operator should not see an error for it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return STOP_RACE_MESSAGE not in str(record.msg)


logging.getLogger("watchdog.observers.inotify").addFilter(_StopRaceFilter())

_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)


class WatchLimitError(OSError):
    """The kernel refused another inotify watch or instance (ENOSPC / EMFILE)."""


def is_watch_limit(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _LIMIT_ERRNOS


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
    _report_overflow(fd, on_overflow)
    _report_watch_limit(fd, on_limit)
    _replace_held_watch(fd)
    return observer


def _report_overflow(fd: Any, on_overflow: Callable[[], None]) -> None:
    handle_event = getattr(fd, "handle_event", None)
    if not callable(handle_event):
        return

    def _handle_event(event: Any) -> None:
        if getattr(event, "is_queue_overflow", False):
            on_overflow()
        handle_event(event)

    setattr(fd, "handle_event", _handle_event)  # noqa: B010 - instance attribute on purpose


def _report_watch_limit(fd: Any, on_limit: Callable[[], None]) -> None:
    get_or_create_watch = getattr(fd, "_get_or_create_watch", None)
    if not callable(get_or_create_watch):
        return

    def _get_or_create_watch(*args: Any, **kwargs: Any) -> Any:
        try:
            return get_or_create_watch(*args, **kwargs)
        except OSError as exc:
            if is_watch_limit(exc):
                on_limit()
            raise

    setattr(fd, "_get_or_create_watch", _get_or_create_watch)  # noqa: B010


def _replace_held_watch(fd: Any) -> None:
    add_callback = getattr(fd, "add_callback", None)
    fd_lock = getattr(fd, "_lock", None)
    watch_for_wd = getattr(fd, "_watch_for_wd", None)
    if not (callable(add_callback) and fd_lock is not None and isinstance(watch_for_wd, dict)):
        return

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
