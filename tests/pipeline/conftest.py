"""A rig for the pipeline's parts: a real ledger in a temp dir, the real simulator on loopback,
a real client, and the parts wired as the daemon wires them, without the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import wait_until
from watcher.config import parse_config
from watcher.hub.client import HubClient
from watcher.ledger import Ledger
from watcher.model import Drop, FileEntry, ReadyDrop, Scan
from watcher.pipeline import Pipeline

DEPLOYMENT = "01902d6f-bb35-74cb-bd27-c09b38bbf20a"
REMOTE = "acme/Finance/fs/Google Drive/My Drive/drops"


@dataclass
class Rig:
    """Everything a part needs, plus helpers to make drops and wait on the simulator."""

    tmp: Path
    watch: Path
    sim: Any
    rule: dict[str, Any]
    hub: dict[str, Any]
    pipeline_kw: dict[str, Any] = field(default_factory=dict)
    # More rules, by name -> their keys (each watches tmp/watch-<name>; same deployment).
    extra_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    token: str = "t"
    ledger: Ledger | None = None
    pipeline: Pipeline | None = None
    # A shared PostgreSQL ledger, this pipeline working on it as `host`.
    dsn: str | None = None
    host: str = "host-b"
    lease_s: float | None = None  # state.lease_seconds (None: the default)

    def config_text(self) -> str:
        rule = {
            "name": "main",
            "watch": str(self.watch),
            "remote_dir": REMOTE,
            "deployment_id": DEPLOYMENT,
            "settle_seconds": 0.1,
            "verify_remote": False,
            **self.rule,
        }
        rules = [rule]
        for name, keys in self.extra_rules.items():
            (self.tmp / f"watch-{name}").mkdir(exist_ok=True)
            extra = {**rule, "name": name, "watch": str(self.tmp / f"watch-{name}")}
            rules.append({**extra, "remote_dir": f"{REMOTE}-{name}", **keys})
        hub = {"base_url": self.sim.url, "token_env": "AIHUB_TEST_TOKEN", **self.hub}
        data: dict[str, Any] = {"hub": hub, "state_dir": str(self.tmp / "state"), "rules": rules}
        if self.dsn is not None:
            data["state"] = {"backend": "postgresql", "dsn": self.dsn, "host_id": self.host}
            if self.lease_s is not None:
                data["state"]["lease_seconds"] = self.lease_s
        return yaml.safe_dump(data, sort_keys=False)

    def client(self, token: str | None = None) -> HubClient:
        return HubClient(base_url=self.sim.url, token=token or self.token, timeout_s=10)

    def build(self, *, token: str | None = None, client: HubClient | None = None) -> Pipeline:
        """The pipeline, its ledger and its client. Call inside the test's event loop."""
        config = parse_config(
            self.config_text(), path=self.tmp / "c.yaml", env={"AIHUB_TEST_TOKEN": self.token}
        )
        if self.dsn is None:
            self.ledger = Ledger(self.tmp / "ledger.sqlite3")
        else:
            self.ledger = Ledger.on_postgres(self.dsn)
            self.ledger.act_as(self.host, lease_s=config.state.lease_seconds)
        self.pipeline = Pipeline(
            config=config,
            ledger=self.ledger,
            client=client or self.client(token),
            **self.pipeline_kw,
        )
        return self.pipeline

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.calls.shutdown()
            self.pipeline.close()
        if self.ledger is not None:
            self.ledger.close()

    # --- drops --------------------------------------------------------------------------

    def make_drop(
        self,
        name: str,
        files: dict[str, bytes] | None = None,
        *,
        marker: Path | None = None,
        rule: str = "main",
    ) -> ReadyDrop:
        """Write a drop folder under `watch` and return it as the detector would hand it over."""
        folder = (self.watch if rule == "main" else self.tmp / f"watch-{rule}") / name
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for rel, data in sorted((files or {"page-1.pdf": b"%PDF-1 " + name.encode()}).items()):
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            st = os.stat(path)
            entries.append(FileEntry(rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns))
        scan = Scan(drop=name, files=tuple(entries), in_progress=())
        return ReadyDrop(rule=rule, drop=name, scan=scan, marker=marker, detected_at=time.time())

    def drop(self, name: str, rule: str = "main") -> Drop:
        assert self.ledger is not None
        found = self.ledger.find_active(rule, name)
        assert found is not None, f"no live row for {name}"
        return found

    def input_dir(self, name: str) -> str:
        return f"{REMOTE}/{name}"

    def posts(self) -> list[Any]:
        return [r for r in self.sim.requests if r.method == "POST"]


@pytest.fixture
def rig(tmp_path: Path, hub_sim: Any) -> Iterator[Rig]:
    watch = tmp_path / "watch"
    watch.mkdir()
    r = Rig(tmp=tmp_path, watch=watch, sim=hub_sim, rule={}, hub={})
    yield r
    r.close()


def run(coro_fn: Callable[[], Coroutine[Any, Any, Any]], *, timeout: float = 60) -> Any:
    """Run one scenario on a fresh event loop, with a deadline."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


async def until(predicate: Callable[[], Any], *, timeout: float = 10, what: str = "") -> Any:
    """Await (yielding to the loop) until `predicate()` is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate!r}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(*coros: Coroutine[Any, Any, Any]) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Run loops as tasks for the block; a loop that crashed fails the test."""
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        yield tasks
    finally:
        crashed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert not crashed, f"a loop crashed: {crashed[0].exception()!r}"


__all__ = ["DEPLOYMENT", "REMOTE", "Rig", "run", "running", "until", "wait_until"]
