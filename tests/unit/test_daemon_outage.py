"""The daemon's hold on a database ledger's outage (watcher/app/outage.py): it notices the
error wherever it is raised, retries opening the ledger with back-off, and gives up only on a
stop or on an error that is not an outage. The whole path runs with real daemons and a real
server restart in tests/integration/test_multihost_chaos.py; these pin its edges.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from watcher.app import outage
from watcher.config import Config
from watcher.errors import LedgerError, LedgerUnavailableError
from watcher.ledger import Ledger
from watcher.sdnotify import Notifier

CONFIG = cast(Config, object())


class Opener:
    """Opens "the ledger" after `down` refused attempts, or raises `error` once up."""

    def __init__(self, down: int, error: LedgerError | None = None) -> None:
        self.down = down
        self.error = error
        self.calls = 0
        self.ledger = cast(Ledger, object())

    def __call__(self, config: Config) -> Ledger:
        self.calls += 1
        if self.calls <= self.down:
            raise LedgerUnavailableError("cannot open ledger postgresql://x: connection refused")
        if self.error is not None:
            raise self.error
        return self.ledger


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "RETRY_FIRST_S", 0.01)
    monkeypatch.setattr(outage, "RETRY_MAX_S", 0.02)


def _reopen(opener: Opener, stop: asyncio.Event) -> Any:
    return outage.reopen_ledger(CONFIG, open_ledger=opener, stop=stop, notifier=Notifier({}))


def test_the_ledger_is_reopened_once_the_database_answers() -> None:
    opener = Opener(down=3)

    async def go() -> Ledger | None:
        return await _reopen(opener, asyncio.Event())

    with capture_logs() as logs:
        assert asyncio.run(go()) is opener.ledger
    assert [e["event"] for e in logs] == ["ledger.retry"] * 3 + ["ledger.back"]
    assert [e["retry_in_s"] for e in logs[:3]] == [0.01, 0.02, 0.02]  # doubling, capped
    assert logs[-1]["attempts"] == 3


def test_a_stop_while_waiting_ends_the_wait() -> None:
    opener = Opener(down=10**6)

    async def go() -> Ledger | None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.1, stop.set)
        return await _reopen(opener, stop)

    assert asyncio.run(go()) is None
    assert 1 < opener.calls < 100


def test_an_error_that_is_not_an_outage_is_raised() -> None:
    opener = Opener(down=1, error=LedgerError("ledger has schema version 99, newer than ..."))

    async def go() -> Ledger | None:
        return await _reopen(opener, asyncio.Event())

    with pytest.raises(LedgerError, match="schema version 99"):
        asyncio.run(go())


def test_an_outage_raised_in_a_callback_is_seen_and_others_go_on() -> None:
    """A batched write runs as a loop callback: nobody awaits it, the watch must see it."""
    others: list[Any] = []

    def boom(exc: BaseException) -> None:
        raise exc

    async def go() -> BaseException:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: others.append(context["exception"]))
        watch = outage.OutageWatch()
        watch.install(loop)
        loop.call_soon(boom, ValueError("a bug elsewhere"))
        loop.call_soon(boom, LedgerUnavailableError("server closed the connection"))
        with pytest.raises(LedgerUnavailableError) as caught:
            async with asyncio.timeout(5):
                await watch.raise_when_seen()
        return caught.value

    seen = asyncio.run(go())
    assert str(seen) == "server closed the connection"
    assert [str(e) for e in others] == ["a bug elsewhere"]


def test_an_outage_is_found_in_a_group_of_the_pipelines_loops() -> None:
    """The pipeline's loops run in a TaskGroup: its outage arrives as an ExceptionGroup."""
    lost = LedgerUnavailableError("server closed the connection")
    assert outage.outage_in(lost) is lost
    assert outage.outage_in(ExceptionGroup("loops", [ExceptionGroup("inner", [lost])])) is lost
    mixed = ExceptionGroup("loops", [lost, RuntimeError("a bug")])
    assert outage.outage_in(mixed) is None  # a bug as well: that one stops the daemon
    assert outage.outage_in(LedgerError("schema version 99")) is None
