"""Fixtures for the simulator tests: a simulator with a fixed token, a client, the spec schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import load_openapi_spec
from tests.sim_helpers import AUTH, TOKEN
from watcher.sim import HubSim, SimOptions, serve_in_thread


@pytest.fixture
def sim() -> Iterator[HubSim]:
    with serve_in_thread(SimOptions(token=TOKEN, seed=7)) as s:
        yield s


@pytest.fixture
def client(sim: HubSim) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def spec_schemas() -> dict[str, Any]:
    """The spec's schemas; skips without ../shared/, fails under CI=true."""
    schemas: dict[str, Any] = load_openapi_spec()["components"]["schemas"]
    return schemas
