"""Fixtures for the simulator tests: a simulator with a fixed token, a client, the spec schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import OPENAPI_PATH
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
    if not OPENAPI_PATH.exists():
        pytest.skip(f"OpenAPI description not found at {OPENAPI_PATH}")
    spec = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    return spec["components"]["schemas"]
