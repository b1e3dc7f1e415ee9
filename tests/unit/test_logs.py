"""logs: JSON/console rendering, shared keys for stdlib records, level filtering, redaction."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from watcher.logs import (
    MASK,
    configure_logging,
    get_logger,
    redact_text,
    register_secret,
    reset_logging,
)
from watcher.redact import MIN_SECRET_LENGTH

TOKEN = "tok_9f8e7d6c5b4a39281706"


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    yield
    reset_logging()


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_json_line_has_event_level_timestamp_and_fields(stream: io.StringIO) -> None:
    """Off a TTY: one JSON object per line with event, level, ISO UTC timestamp and fields."""
    configure_logging(level="info", stream=stream)
    get_logger("watcher.test").info("drop.ready", rule="invoices", drop_id="d-1", latency_ms=12.5)
    [line] = json_lines(stream)
    assert line["event"] == "drop.ready"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert (line["rule"], line["drop_id"], line["latency_ms"]) == ("invoices", "d-1", 12.5)
    assert line["logger"] == "watcher.test"


def test_contextvars_are_merged(stream: io.StringIO) -> None:
    """Context bound with bound_contextvars appears on every line logged inside it."""
    configure_logging(stream=stream, fmt="json")
    with structlog.contextvars.bound_contextvars(rule="r1", drop_id="d-2"):
        get_logger().info("run.submitted", run_id="run-9")
    [line] = json_lines(stream)
    assert (line["rule"], line["drop_id"], line["run_id"]) == ("r1", "d-2", "run-9")


def test_stdlib_records_get_the_same_keys(stream: io.StringIO) -> None:
    """A stdlib record from another library is rendered as JSON with event/level/timestamp."""
    configure_logging(stream=stream, fmt="json")
    logging.getLogger("watchdog.observers").warning("inotify limit reached: %d", 8192)
    [line] = json_lines(stream)
    assert line["event"] == "inotify limit reached: 8192"
    assert line["level"] == "warning"
    assert line["logger"] == "watchdog.observers"
    assert "timestamp" in line


def test_level_filtering(stream: io.StringIO) -> None:
    """Below the configured level nothing is written, for structlog and stdlib alike."""
    configure_logging(level="warning", stream=stream, fmt="json")
    log = get_logger("watcher.test")
    log.debug("x.debug")
    log.info("x.info")
    log.warning("x.warning")
    logging.getLogger("other").info("stdlib info")
    logging.getLogger("other").error("stdlib error")
    assert [line["event"] for line in json_lines(stream)] == ["x.warning", "stdlib error"]


def test_debug_level_shows_debug_but_httpx_stays_quiet(stream: io.StringIO) -> None:
    """At debug our debug lines appear, but httpx/httpcore INFO request logs do not."""
    configure_logging(level="debug", stream=stream, fmt="json")
    get_logger("watcher.fswatch").debug("fs.event", path="a")
    logging.getLogger("httpx").info("HTTP Request: POST http://x 202")
    logging.getLogger("httpcore.connection").debug("connect_tcp.started")
    logging.getLogger("httpx").warning("httpx warning")
    assert [line["event"] for line in json_lines(stream)] == ["fs.event", "httpx warning"]


def test_unknown_level_is_refused() -> None:
    """An unknown level name is a ValueError listing the valid ones."""
    with pytest.raises(ValueError, match="debug, info, warning, error"):
        configure_logging(level="loud", stream=io.StringIO())


def test_console_renderer_when_asked(stream: io.StringIO) -> None:
    """fmt="console" renders human-readable key=value lines, not JSON, without colour codes."""
    configure_logging(stream=stream, fmt="console")
    get_logger("watcher.test").info("drop.ready", rule="invoices")
    out = stream.getvalue()
    assert "drop.ready" in out and "rule=invoices" in out and " INFO " in out
    assert not out.lstrip().startswith("{")
    assert "\x1b[" not in out


def test_auto_format_picks_console_on_a_tty() -> None:
    """fmt="auto" renders the console format when the stream is a terminal."""
    master, slave = os.openpty()
    try:
        with (
            open(slave, "w", closefd=True) as tty,
            open(master, "rb", buffering=0, closefd=False) as reader,
        ):
            configure_logging(stream=tty)
            get_logger("watcher.test").info("drop.ready", rule="invoices")
            tty.flush()
            data = reader.read(4096).decode()
        assert "drop.ready" in data and not data.lstrip().startswith("{")
    finally:
        os.close(master)


def test_get_logger_works_before_configure(capsys: pytest.CaptureFixture[str]) -> None:
    """Before configure_logging, get_logger uses structlog's defaults and still logs."""
    get_logger("early").info("daemon.starting", pid=1)
    assert "daemon.starting" in capsys.readouterr().out


def test_reconfigure_replaces_the_previous_handler() -> None:
    """Configuring twice leaves exactly one handler of ours: lines are not duplicated."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first, fmt="json")
    configure_logging(stream=second, fmt="json")
    logging.getLogger("lib").warning("once")
    get_logger().warning("twice.not")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once", "twice.not"]


# --- redaction ---------------------------------------------------------------------------


@pytest.fixture
def secret_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="debug", stream=stream, fmt="json")
    register_secret(TOKEN)
    return stream


def test_secret_is_masked_in_nested_structures(secret_stream: io.StringIO) -> None:
    """The token is masked in nested dicts, lists, tuples, dict keys and bytes."""
    get_logger().info(
        "hub.request",
        headers={"Authorization": f"Bearer {TOKEN}", "X": [f"a{TOKEN}b", (TOKEN,)]},
        raw=f"body {TOKEN}".encode(),
        mapping={TOKEN: 1},
    )
    out = secret_stream.getvalue()
    assert TOKEN not in out
    [line] = json_lines(secret_stream)
    assert line["headers"]["Authorization"] == f"Bearer {MASK}"
    assert line["headers"]["X"] == [f"a{MASK}b", [MASK]]
    assert line["raw"] == f"b'body {MASK}'"
    assert line["mapping"] == {MASK: 1}


def test_secret_is_masked_in_exception_tracebacks(secret_stream: io.StringIO) -> None:
    """exc_info=True tracebacks and exception values are rendered with the token masked."""
    log = get_logger()
    try:
        raise RuntimeError(f"auth failed for {TOKEN}")
    except RuntimeError as exc:
        log.error("run.failed", exc_info=True, error=exc)
    out = secret_stream.getvalue()
    assert TOKEN not in out
    [line] = json_lines(secret_stream)
    assert f"auth failed for {MASK}" in line["exception"]
    assert "Traceback" in line["exception"]
    assert line["error"] == f"RuntimeError('auth failed for {MASK}')"


def test_secret_is_masked_in_stdlib_records(secret_stream: io.StringIO) -> None:
    """A stdlib record (message, args and traceback) from another library never shows the token."""
    lib = logging.getLogger("somelib")
    lib.warning("sending %s", {"token": TOKEN})
    try:
        raise ValueError(TOKEN)
    except ValueError:
        lib.exception("oops")
    out = secret_stream.getvalue()
    assert TOKEN not in out
    assert out.count(MASK) >= 2


def test_secret_is_masked_in_console_output() -> None:
    """The console renderer's output, tracebacks included, is masked too."""
    stream = io.StringIO()
    configure_logging(stream=stream, fmt="console")
    register_secret(TOKEN)
    try:
        raise RuntimeError(TOKEN)
    except RuntimeError:
        get_logger().error("run.failed", exc_info=True, token=TOKEN)
    out = stream.getvalue()
    assert TOKEN not in out
    assert "Traceback" in out and MASK in out


def test_arbitrary_objects_are_masked_through_repr(secret_stream: io.StringIO) -> None:
    """Any object whose repr contains the token is logged as its masked repr."""

    class Holder:
        def __repr__(self) -> str:
            return f"Holder(token={TOKEN!r})"

    get_logger().info("x.y", holder=Holder(), path=Path(f"/etc/{TOKEN}"))
    [line] = json_lines(secret_stream)
    assert line["holder"] == f"Holder(token='{MASK}')"
    assert line["path"] == f"/etc/{MASK}"


def test_bearer_values_are_masked_without_registration() -> None:
    """Any `Bearer <value>` is masked even if that value was never registered."""
    assert redact_text("Authorization: Bearer abc.DEF-123") == f"Authorization: Bearer {MASK}"
    assert redact_text("{'authorization': 'bearer xyz'}") == f"{{'authorization': 'bearer {MASK}'}}"


def test_short_values_are_not_registered() -> None:
    """Values shorter than 6 chars are ignored, so a test token like "t" cannot mask every 't'."""
    register_secret("t")
    register_secret("abcde")
    assert redact_text("the cat sat abcde") == "the cat sat abcde"


def test_masking_starts_at_the_shared_minimum_length() -> None:
    """A secret of MIN_SECRET_LENGTH chars is masked in log lines, one char shorter is not (the
    same boundary as the hub's exception text in test_hub_errors.py)."""
    assert MIN_SECRET_LENGTH == 6
    too_short = "Vb3Nq8Rt5Lw2"[: MIN_SECRET_LENGTH - 1]
    just_long_enough = "Pk6Jd9Gs4Fy7"[:MIN_SECRET_LENGTH]
    register_secret(too_short)
    register_secret(just_long_enough)
    assert redact_text(f"a {too_short} b {just_long_enough} c") == f"a {too_short} b {MASK} c"


def test_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    """Overlapping secrets are masked longest first, leaving no fragment behind."""
    register_secret("secret-part")
    register_secret("prefix-secret-part-suffix")
    assert redact_text("x prefix-secret-part-suffix y") == f"x {MASK} y"


def test_a_key_logged_before_its_secret_was_registered_is_masked_after() -> None:
    """Field names are masked once and remembered; registering a secret later (a rotated
    token) still masks it in a key logged before."""
    stream = io.StringIO()
    configure_logging(stream=stream, fmt="json")
    rotated = "rotated-Zx81Qw73Er65"
    get_logger().info("x.before", **{f"k-{rotated}": 1})
    register_secret(rotated)
    get_logger().info("x.after", **{f"k-{rotated}": 1})
    before, after = json_lines(stream)
    assert f"k-{rotated}" in before
    assert after == {**after, f"k-{MASK}": 1} and f"k-{rotated}" not in after
