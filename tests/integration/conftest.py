"""Fixtures for the daemon-level tests: a random token and a simulator that requires it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def sim(token: str) -> Iterator[Any]:
    from watcher.sim import SimOptions, serve_in_thread

    with serve_in_thread(SimOptions(token=token, seed=7)) as s:
        yield s
