"""The hooks watcher.fs.inotify installs on watchdog's internals: each one must find its target.

watchdog has no public API for queue overflows, watch-limit hits or re-added watches, so the
hooks wrap private methods of the observer's own InotifyFD. They skip quietly when a target is
missing, which would make a watchdog upgrade silently lose overflow rescans and the polling
fallback. These tests name every internal the hooks rely on, so such an upgrade fails here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from watcher.fs import inotify

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the hooks are inotify's")

if sys.platform == "linux":
    from watchdog.events import DirCreatedEvent, FileSystemEvent, FileSystemEventHandler
    from watchdog.observers.api import BaseObserver
    from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
    from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, InotifyFD, Watch


def params(func: Any) -> list[str]:
    return list(inspect.signature(func).parameters)


class Recorder(FileSystemEventHandler):
    def __init__(self) -> None:
        self.events: list[FileSystemEvent] = []

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.events.append(event)


class Hooked:
    """A started native observer on a temp folder, recording what the hooks report."""

    def __init__(self, root: Path) -> None:
        self.overflows = 0
        self.limits = 0
        self.handler = Recorder()
        self.observer = inotify.native_observer(on_overflow=self._overflow, on_limit=self._limit)
        self.observer.schedule(self.handler, str(root), recursive=True)
        self.observer.start()
        self.fd: Any = self.observer._inotify_fd  # type: ignore[attr-defined]

    def _overflow(self) -> None:
        self.overflows += 1

    def _limit(self) -> None:
        self.limits += 1

    def group(self) -> Any:
        (emitter,) = self.observer.emitters
        return emitter._inotify  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.observer.stop()
        with contextlib.suppress(RuntimeError):
            self.observer.join(timeout=10)


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[Hooked]:
    h = Hooked(tmp_path)
    yield h
    h.stop()


def test_the_native_observer_is_watchdogs_inotify_observer(hooked: Hooked) -> None:
    """On Linux the native observer is InotifyObserver, reading through its own InotifyFD thread."""
    assert isinstance(hooked.observer, InotifyObserver)
    assert isinstance(hooked.observer, BaseObserver)
    assert isinstance(hooked.fd, InotifyFD)
    assert isinstance(hooked.fd, threading.Thread)  # InotifyWatch.healthy() checks it is alive
    assert hooked.fd.is_alive()
    assert all(e.is_alive() for e in hooked.observer.emitters)


def test_every_hook_is_installed_on_the_instance(hooked: Hooked) -> None:
    """All three hooks found their target: none of them was skipped for a missing attribute."""
    installed = vars(hooked.fd)
    for name in ("handle_event", "_get_or_create_watch", "add_callback"):
        assert name in installed, f"hook on InotifyFD.{name} was not installed"
        assert installed[name] is not getattr(InotifyFD, name)


def test_hooked_methods_keep_the_signatures_the_hooks_call() -> None:
    """The wrapped methods take exactly the arguments the hooks pass on."""
    assert params(InotifyFD.handle_event) == ["self", "event"]
    assert params(InotifyFD._get_or_create_watch) == ["self", "path", "mask"]
    assert params(InotifyFD.add_callback) == ["self", "path", "mask", "callback", "id_"]


def test_watchdog_calls_the_hooked_methods_through_the_instance() -> None:
    """watchdog reaches each hooked method as `self.<name>(`, so an instance attribute wins."""
    assert "self.handle_event(" in inspect.getsource(InotifyFD.run)
    assert "self._get_or_create_watch(" in inspect.getsource(InotifyFD._add_callback)
    assert "self._inotify_fd.add_callback(" in inspect.getsource(InotifyWatchGroup._add_callback)


def test_the_state_the_re_add_hook_reads_exists(hooked: Hooked) -> None:
    """The re-add hook reads the fd's lock and watch table and the group's path -> wd table."""
    assert hasattr(hooked.fd._lock, "__enter__")
    assert isinstance(hooked.fd._watch_for_wd, dict)
    assert "callbacks" in {f.name for f in dataclasses.fields(Watch)}
    group = hooked.group()
    assert isinstance(group, InotifyWatchGroup)
    assert group._callback is group  # what add_callback receives as `callback`
    assert isinstance(group._active_callbacks_by_path, dict)
    assert os.fsencode(group.path) in group._active_callbacks_by_path


def test_overflow_is_reported_and_watchdog_still_handles_it(hooked: Hooked, tmp_path: Path) -> None:
    """A queue-overflow event reaches our callback once, and watchdog's own handling still runs."""
    assert "wd" in {f.name for f in dataclasses.fields(InotifyEvent)}
    overflow = InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b"")
    assert overflow.is_queue_overflow
    hooked.fd.handle_event(overflow)
    assert hooked.overflows == 1
    # watchdog rebuilt its watches: events from the folder still arrive.
    (tmp_path / "after-overflow").mkdir()
    wait_until(
        lambda: any(isinstance(e, DirCreatedEvent) for e in hooked.handler.events),
        timeout=5,
        what="an event after the overflow",
    )
    assert hooked.limits == 0


def test_watch_limit_hook_passes_other_errors_through(hooked: Hooked, tmp_path: Path) -> None:
    """The limit hook wraps watch creation: ordinary errors go through unreported."""
    with pytest.raises(FileNotFoundError):
        hooked.fd._get_or_create_watch(
            os.fsencode(tmp_path / "missing"), InotifyConstants.IN_CREATE
        )
    assert hooked.limits == 0
    assert inotify.is_watch_limit(OSError(28, "No space left on device"))


def test_re_adding_a_held_watch_does_not_warn(hooked: Hooked) -> None:
    """Adding a path the group already watches (mkdir -p races) re-registers it silently."""
    group = hooked.group()
    root = os.fsencode(group.path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # watchdog's RuntimeWarning would kill its thread
        wd = hooked.fd.add_callback(root, group.event_mask, group._callback, group._id)
    assert wd == group._active_callbacks_by_path[root]


def test_the_stop_race_error_line_is_filtered() -> None:
    """watchdog still logs the stop-race line under that text and logger; our filter drops it."""
    assert inotify.STOP_RACE_MESSAGE in inspect.getsource(InotifyEmitter.queue_events)
    logger = logging.getLogger("watchdog.observers.inotify")
    assert sys.modules["watchdog.observers.inotify"].logger is logger

    def passes(msg: str) -> bool:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, msg, (), None)
        return all(f.filter(record) for f in logger.filters)

    assert not passes("InotifyEmitter.queue_events() called when the thread is inactive")
    assert passes("Inotify queue overflowed; filesystem events were lost")
