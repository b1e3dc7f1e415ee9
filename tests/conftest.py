"""Shared fixtures: the simulator on loopback, condition waits, thread-leak guard."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
OPENAPI_PATH = SHARED_DIR / "aihub-openapi.yaml"


def load_openapi_spec() -> dict[str, Any]:
    """The vendor's OpenAPI description, parsed. A clone without ../shared/ skips the calling
    test, with the reason; under CI=true the missing spec fails it instead, so CI always checks
    the contract."""
    if not OPENAPI_PATH.is_file():
        why = f"no AI Hub OpenAPI description at {OPENAPI_PATH} (a clone without ../shared/)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI=true requires it", pytrace=False)
        pytest.skip(why)
    import yaml

    with OPENAPI_PATH.open(encoding="utf-8") as f:
        spec: dict[str, Any] = yaml.safe_load(f)
    return spec


def http_get(url: str, *, timeout: float = 10) -> tuple[int, str]:
    """(status, body) of a GET on loopback; an error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate!r}")
        time.sleep(interval)


@pytest.fixture
def hub_sim() -> Iterator[Any]:
    """A started simulator on 127.0.0.1 (token 't'); `.options` can be changed at runtime."""
    from watcher.sim import SimOptions, serve_in_thread

    with serve_in_thread(SimOptions(token="t", seed=1)) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    from watcher.logs import reset_logging

    structlog.reset_defaults()
    yield
    reset_logging()
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _no_daemon_leaks() -> Iterator[None]:
    """A daemon subprocess that a failing test left running is killed, not leaked."""
    from tests.daemon_helpers import STARTED

    yield
    while STARTED:
        daemon = STARTED.pop()
        if daemon.proc.poll() is None:
            daemon.kill()


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Every thread a test starts must be gone (or going) when it ends."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Where the test's ledger lives, once per backend (tests/ledger_stores.py)."""
    from tests.ledger_stores import store_for

    with store_for(request.param, tmp_path) as store:
        yield store


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """The DSN of a fresh PostgreSQL schema, dropped afterwards (skipped without a server)."""
    from tests.ledger_stores import pg_schema

    with pg_schema() as dsn:
        yield dsn
