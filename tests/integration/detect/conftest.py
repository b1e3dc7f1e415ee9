"""Fixtures for the detection tests: a fresh watch folder, and Detectors stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.detect.harness import Running
from watcher.config import Rule


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def _start(rules: list[Rule], **kwargs: Any) -> Running:
        running = Running(rules, **kwargs)
        started.append(running)
        running.wait_startup()
        return running

    yield _start
    for running in started:
        running.stop()


@pytest.fixture
def watch(tmp_path: Path) -> Path:
    w = tmp_path / "watch"
    w.mkdir()
    return w
