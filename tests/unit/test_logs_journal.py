"""journald priorities: under systemd each line starts with `<N>` so `journalctl -p` filters by
level, and only when our stream really is the journal connection `$JOURNAL_STREAM` names."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.journal_helpers import (
    StreamReader,
    assert_priorities_match_levels,
    journal_stream_of,
    parse_prefixed,
)
from watcher.logs import configure_logging, get_logger, reset_logging
from watcher.logs.journal import journal_stream_matches, priority_of, with_priority

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok_4c1b9e7a22d04f6e8b35"

# Logs one line at every level, a stdlib record from watchdog and httpx each, a traceback and
# the token; the test reads the bytes from the socket the script's stdout is connected to.
SCRIPT = textwrap.dedent(
    f"""
    import logging, sys
    from watcher.logs import configure_logging, get_logger, register_secret
    configure_logging(level="debug", fmt=sys.argv[1])
    register_secret({TOKEN!r})
    log = get_logger("watcher.script")
    log.debug("fs.event", path="/srv/drops/a")
    log.info("drop.ready", rule="invoices", drop="d1", token={TOKEN!r})
    log.warning("submit.retry", rule="invoices", attempt=2, error="ConnectError()")
    log.error("hub.paused", http_status=401, error="Bearer {TOKEN}")
    log.critical("daemon.stuck", loops=["submit"])
    logging.getLogger("watchdog.observers.inotify").warning("inotify watch limit reached")
    logging.getLogger("httpx").error("connection pool is full")
    logging.getLogger("watchdog.observers").info("watching %s", "/srv/drops")
    try:
        raise RuntimeError("line one\\nline two")
    except RuntimeError:
        log.exception("submit.crashed", rule="invoices")
    """
)


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    yield
    reset_logging()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected stream-socket pair, as journald hands a service for its stdout."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield ours, theirs
    ours.close()
    theirs.close()


def run_script(
    stdout: socket.socket, journal_stream: str | None, fmt: str = "json"
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if journal_stream is not None:
        env["JOURNAL_STREAM"] = journal_stream
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt],
        stdout=stdout.fileno(),
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )


def read_all(writer: socket.socket, reader: socket.socket) -> bytes:
    """Close our copy of the writing end, then read until the child's copies are gone too."""
    writer.shutdown(socket.SHUT_WR)
    chunks = []
    while chunk := reader.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# --- what journald receives from a real process -----------------------------------------------


def test_every_line_carries_the_priority_of_its_level(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Under systemd each JSON line starts with <N> matching its level, stdlib records included,
    and what follows the prefix is the JSON line (journalctl -o cat shows it)."""
    writer, reader = pair
    run_script(writer, journal_stream_of(writer))
    data = read_all(writer, reader)
    lines = parse_prefixed(data)
    assert assert_priorities_match_levels(lines) == {
        "debug",
        "info",
        "warning",
        "error",
        "critical",
    }
    by_event = {event["event"]: priority for priority, event in lines}
    assert by_event["hub.paused"] == 3 and by_event["daemon.stuck"] == 2
    assert by_event["inotify watch limit reached"] == 4  # watchdog's own record
    assert by_event["connection pool is full"] == 3  # httpx's
    assert by_event["watching /srv/drops"] == 6
    [(_, crashed)] = [line for line in lines if line[1]["event"] == "submit.crashed"]
    assert "line one\nline two" in crashed["exception"]  # the traceback stays inside the JSON
    assert TOKEN.encode() not in data


def test_a_console_traceback_keeps_the_priority_on_every_line(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """--log-format console under systemd: each physical line, traceback lines too, carries the
    event's priority, so `journalctl -p err` shows the whole traceback."""
    writer, reader = pair
    run_script(writer, journal_stream_of(writer), fmt="console")
    text = read_all(writer, reader).decode()
    lines = text.splitlines()
    assert all(line[:1] == "<" and line[2:3] == ">" for line in lines), lines
    start = next(i for i, line in enumerate(lines) if "submit.crashed" in line)
    assert lines[start].startswith("<3>")
    assert lines[start + 1] == "<3>Traceback (most recent call last):"
    assert lines[-2:] == ["<3>RuntimeError: line one", "<3>line two"]
    assert all(line.startswith("<3>") for line in lines[start:])
    assert TOKEN not in text


@pytest.mark.parametrize("journal_stream", [None, "other", "1:2", ""])
def test_no_prefix_unless_the_stream_is_the_journal(
    pair: tuple[socket.socket, socket.socket], journal_stream: str | None
) -> None:
    """Without JOURNAL_STREAM, or naming another connection (a pipe started from a unit's shell
    inherits it), or malformed, the lines are plain JSON."""
    writer, reader = pair
    if journal_stream == "other":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as elsewhere:
            run_script(writer, journal_stream_of(elsewhere))
    else:
        run_script(writer, journal_stream)
    data = read_all(writer, reader)
    lines = data.decode().splitlines()
    assert len(lines) >= 8
    assert all(line.startswith("{") for line in lines), lines[:3]


# --- the parts -----------------------------------------------------------------------------


def test_the_stream_must_match_device_and_inode(pair: tuple[socket.socket, socket.socket]) -> None:
    """Only the exact device:inode of our stream counts; other values, or no fd, do not."""
    writer, reader = pair
    with writer.makefile("w") as stream:
        here = journal_stream_of(writer)
        assert journal_stream_matches(stream, {"JOURNAL_STREAM": here})
        assert not journal_stream_matches(stream, {"JOURNAL_STREAM": journal_stream_of(reader)})
        assert not journal_stream_matches(stream, {})
        assert not journal_stream_matches(stream, {"JOURNAL_STREAM": here + "0"})
        assert not journal_stream_matches(stream, {"JOURNAL_STREAM": here.replace(":", " ")})
        assert not journal_stream_matches(stream, {"JOURNAL_STREAM": "-1:-1"})
    assert not journal_stream_matches(io.StringIO(), {"JOURNAL_STREAM": here})


def test_priority_names_follow_sd_daemon() -> None:
    """error -> 3, warning -> 4, info -> 6, debug -> 7, critical -> 2; unknown -> info."""
    assert [priority_of(n) for n in ("critical", "error", "warning", "info", "debug")] == [
        2,
        3,
        4,
        6,
        7,
    ]
    assert priority_of("exception") == 3 and priority_of("WARNING") == 4
    assert priority_of("trace") == 6 and priority_of(None) == 6
    assert with_priority('{"a": 1}', "error") == '<3>{"a": 1}'
    assert with_priority("x\ny", "debug") == "<7>x\n<7>y"


def test_in_process_logging_to_the_journal_socket(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """configure_logging(stream=...) checks that stream: lines written to it are prefixed."""
    writer, reader = pair
    monkeypatch.setenv("JOURNAL_STREAM", journal_stream_of(writer))
    received = StreamReader(reader)
    with writer.makefile("w") as stream:
        configure_logging(stream=stream, fmt="json", level="debug")
        log = get_logger("watcher.test")
        log.debug("x.debug")
        log.warning("x.warning")
        reset_logging()
    writer.shutdown(socket.SHUT_WR)
    lines = parse_prefixed(received.join())
    assert [(p, e["event"]) for p, e in lines] == [(7, "x.debug"), (4, "x.warning")]
