"""A Detector on its own loop in a thread, and the helpers the detection tests share."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import wait_until
from watcher.config import Rule
from watcher.detect import Detector
from watcher.model import ReadyDrop

SETTLE = 0.3
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def make_rule(watch: Path, **overrides: Any) -> Rule:
    fields: dict[str, Any] = {
        "name": "r",
        "watch": watch,
        "remote_dir": "/remote/in",
        "deployment_id": "dep-1",
        "settle_seconds": SETTLE,
    }
    fields.update(overrides)
    return Rule(**fields)


class Running:
    """A Detector on its own asyncio loop in a background thread, collecting emitted drops."""

    def __init__(
        self,
        rules: list[Rule],
        *,
        is_known: Callable[[str, str], bool] | None = None,
        emit_delay: float = 0.0,
    ) -> None:
        self.rules = rules
        self.ready: list[ReadyDrop] = []
        self.emit_started: list[float] = []
        self.emit_finished: list[float] = []
        self.emit_delay = emit_delay
        # Like the pipeline: the ledger knows every drop handed over before.
        self.is_known = is_known or (lambda rule, drop: (rule, drop) in self.emitted_keys())
        self.detector: Detector | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._thread_main, name="detector-loop")
        self._thread.start()
        assert self._up.wait(10), "detector loop did not start"

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._up.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.detector = Detector(self.rules, is_known=self.is_known)
        self._stop = asyncio.Event()
        task = asyncio.create_task(self.detector.run(self._emit))
        self._up.set()
        await self._stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _emit(self, ready: ReadyDrop) -> None:
        with self._lock:
            self.emit_started.append(time.monotonic())
            self.ready.append(ready)
        if self.emit_delay:
            await asyncio.sleep(self.emit_delay)
        with self._lock:
            self.emit_finished.append(time.monotonic())

    def emitted_keys(self) -> set[tuple[str, str]]:
        with self._lock:
            return {(r.rule, r.drop) for r in self.ready}

    def drops(self) -> list[str]:
        with self._lock:
            return [r.drop for r in self.ready]

    def get(self, drop: str) -> ReadyDrop | None:
        with self._lock:
            return next((r for r in self.ready if r.drop == drop), None)

    def wait_startup(self) -> None:
        wait_until(
            lambda: self.detector is not None and self.detector.startup_scan_done.is_set(),
            timeout=10,
            what="startup scan",
        )

    def run_on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function or coroutine function on the detector's loop, return its result."""
        assert self.loop is not None

        async def call() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=30)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "detector loop did not stop"
        if self._error is not None:
            raise self._error


def write(path: Path, data: bytes | str = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def rels(ready: ReadyDrop) -> list[str]:
    return [f.rel for f in ready.scan.files]


def stays_false(predicate: Callable[[], Any], seconds: float) -> bool:
    """True if `predicate` stays falsy for `seconds` (for asserting that nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return False
        time.sleep(0.02)
    return not predicate()


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]
