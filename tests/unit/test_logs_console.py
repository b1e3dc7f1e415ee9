"""The console view a person reads on a terminal: one line per event, the fields that matter
first, coloured by level, AI Hub responses only at debug; checked against a golden snapshot.

Regenerate the snapshot after an intended change with `UPDATE_GOLDEN=1 pytest <this file>`,
then read the diff.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from watcher.logs import MASK, configure_logging, get_logger, register_secret, reset_logging

GOLDEN = Path(__file__).parent / "snapshots" / "logs_console.txt"
TOKEN = "tok_7a1f0c9e5d3b48a2e6c1"
RUN_ID = "4ea8a54e-2bc2-409c-9db6-99b25aee3b2e"
REMOTE = "acme/Finance/fs/Google Drive/My Drive/drops"
DEPLOYMENT = "01902d6f-bb35-74cb-bd27-c09b38bbf20a"
# 2026-03-02T08:15:00Z; the snapshot renders it in UTC+1 (TZ=CET-1, no DST), as 09:15:00.
T0 = 1772439300.0

# Compiled under a fixed file name so the traceback is the same on every machine.
_CRASH_SOURCE = """\
def post_run():
    raise ConnectionResetError(104, "Connection reset by peer")

def caught():
    try:
        post_run()
    except OSError as exc:
        return exc
"""


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    yield
    reset_logging()


@pytest.fixture
def cet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC+1 for the test (a POSIX TZ string: no tz database needed)."""
    monkeypatch.setenv("TZ", "CET-1")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ticking_clock(start: float = T0, step: float = 1.0) -> Callable[[], float]:
    ticks = itertools.count()
    return lambda: start + step * next(ticks)


def crash() -> BaseException:
    namespace: dict[str, Any] = {}
    exec(compile(_CRASH_SOURCE, "<snapshot>", "exec"), namespace)  # a fixed text of ours
    exc: BaseException = namespace["caught"]()
    return exc


def response(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": RUN_ID,
        "status": status,
        "start_timestamp": 1772439301000000000,
        "input_dir": f"{REMOTE}/2026-03-02",
        "app_id": "app-invoices-v3",
        "deployment_id": DEPLOYMENT,
        "tags": ["aihub-watcher", "drop:d-6a9e09ebee0a"],
        **extra,
    }


def log_representative_events() -> None:
    """The events a person meets most, in the order a drop lives through them."""
    log = get_logger("watcher.pipeline")
    drop = {"rule": "invoices", "drop": "2026-03-02", "drop_id": "d-6a9e09ebee0a"}
    # The fields the submit worker logs with (pipeline/submit.py, pipeline/failures.py).
    post = {**drop, "deployment_id": DEPLOYMENT, "input_dir": f"{REMOTE}/2026-03-02"}
    log.info(
        "drop.ready", **drop, state="ready", files=12, bytes=48213, input_dir=post["input_dir"]
    )
    log.warning(
        "submit.retry",
        **post,
        attempt=1,
        http_status=None,
        delay_s=2.0,
        latency_ms=10004.6,
        error=f"POST /v2/apps/deployments/{DEPLOYMENT}/runs: ConnectTimeout: timed out",
    )
    log.info(
        "run.submitted",
        **post,
        attempt=2,
        run_id=RUN_ID,
        status="RUNNING",
        http_status=202,
        latency_ms=182.37,
        response=response("RUNNING"),
    )
    log.info(
        "run.status",
        **drop,
        run_id=RUN_ID,
        status="COMPLETE",
        previous_status="RUNNING",
        response=response("COMPLETE", finish_timestamp=1772439361000000000),
    )
    log.warning(
        "run.status",
        **drop,
        run_id=RUN_ID,
        status="FAILED",
        previous_status="RUNNING",
        response=response("FAILED", msg="OCR step failed: page 3 unreadable"),
    )
    log.warning("upload.skipped", **drop, names=[f"scan-{i:03}.tif" for i in range(25)])
    log.error(
        "hub.paused",
        http_status=401,
        error=f"POST /v2/apps/deployments/{DEPLOYMENT}/runs: HTTP 401: bad token {TOKEN}",
        hint="fix the token (token_env / token_file / credential), then SIGHUP",
    )
    logging.getLogger("watchdog.observers.inotify").warning("inotify watch limit reached")
    exc = crash()
    log.error("submit.crashed", **drop, error=repr(exc), exc_info=exc)
    get_logger("watcher.daemon").error(
        "config.invalid",
        path="/etc/aihub-watcher/config.yaml",
        issues=[
            "config.yaml:7:5: rules[0].watch: no such directory: /srv/drops/invoices",
            "config.yaml:12:18: rules[1].settle_seconds: must be > 0, got -1",
        ],
    )


def test_console_rendering_matches_the_snapshot(cet: None) -> None:
    """The console view of a drop's life is exactly the golden text: short local time, level,
    event, rule, drop, run id (8 chars), status, latency, then the rest; no response; the token
    masked; tracebacks under their line."""
    stream = io.StringIO()
    configure_logging(stream=stream, fmt="console", clock=ticking_clock())
    register_secret(TOKEN)
    log_representative_events()
    out = stream.getvalue()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(out, encoding="utf-8")
    assert out == GOLDEN.read_text(encoding="utf-8")
    assert TOKEN not in out and MASK in out
    assert "\x1b[" not in out


def test_full_responses_appear_at_debug_level(cet: None) -> None:
    """At --log-level debug the console shows the whole AI Hub response and uncut lists."""
    stream = io.StringIO()
    configure_logging(stream=stream, fmt="console", level="debug", clock=ticking_clock())
    log_representative_events()
    out = stream.getvalue()
    assert '"app_id":"app-invoices-v3"' in out and '"tags":["aihub-watcher"' in out
    assert '"scan-024.tif"' in out and "…" not in out


def test_json_lines_keep_the_full_response() -> None:
    """Off a terminal the JSON line still carries every field of the response."""
    stream = io.StringIO()
    configure_logging(stream=stream, fmt="json", clock=ticking_clock())
    get_logger().info("run.submitted", run_id=RUN_ID, response=response("RUNNING"))
    assert '"app_id": "app-invoices-v3"' in stream.getvalue()
    assert f'"run_id": "{RUN_ID}"' in stream.getvalue()


def test_the_token_never_reaches_the_console() -> None:
    """A registered token is masked in every console field: short run id, cut lists, nested
    values, responses at debug, and tracebacks."""
    for level in ("info", "debug"):
        stream = io.StringIO()
        configure_logging(stream=stream, fmt="console", level=level)
        register_secret(TOKEN)
        with structlog.contextvars.bound_contextvars(drop=f"d-{TOKEN}"):
            get_logger().warning(
                "x.y",
                run_id=TOKEN,
                names=[f"n{i}" for i in range(40)] + [TOKEN],
                response={"msg": TOKEN, "nested": {"k": [TOKEN]}},
                exc_info=RuntimeError(TOKEN),
            )
        out = stream.getvalue()
        assert TOKEN not in out and TOKEN[:8] not in out, out
        assert f"run={MASK}" in out


def read_tty(render: Callable[[Any], None], lines: int) -> str:
    """What a terminal receives when `render(stream)` logs `lines` lines to it."""
    master, slave = os.openpty()
    received = b""
    try:
        with open(slave, "w", closefd=True) as tty:
            render(tty)
            tty.flush()
            deadline = time.monotonic() + 5
            while received.count(b"\n") < lines and time.monotonic() < deadline:
                if select.select([master], [], [], 0.1)[0]:
                    received += os.read(master, 65536)
    finally:
        os.close(master)
    return received.decode()


def log_every_level(stream: Any) -> None:
    configure_logging(stream=stream, level="debug")  # auto: a TTY gets the console view
    log = get_logger("watcher.test")
    for name in ("debug", "info", "warning", "error", "critical"):
        getattr(log, name)(f"x.{name}", rule="r")


def test_levels_are_coloured_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a TTY each level label and event name has its colour: debug blue, info green,
    warning yellow, error red, critical bold red."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = read_tty(log_every_level, lines=5)
    expected = [
        ("DEBUG", "x.debug", "\x1b[34m"),
        ("INFO", "x.info", "\x1b[32m"),
        ("WARN", "x.warning", "\x1b[33m"),
        ("ERROR", "x.error", "\x1b[31m"),
        ("CRIT", "x.critical", "\x1b[1;31m"),
    ]
    lines = out.splitlines()
    assert len(lines) == 5
    for line, (label, event, color) in zip(lines, expected, strict=True):
        assert f"{color}{label}\x1b[0m" in line, repr(line)
        assert f"{color}{event}\x1b[0m" in line, repr(line)
        assert "rule=r" in line


def test_no_color_turns_colour_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR set to any non-empty value (no-color.org) keeps a terminal's lines plain."""
    monkeypatch.setenv("NO_COLOR", "1")
    out = read_tty(log_every_level, lines=5)
    assert "x.error" in out and "\x1b[" not in out


def test_forced_console_into_a_pipe_is_plain() -> None:
    """--log-format console into a pipe (not a TTY) has no escape codes."""
    read_fd, write_fd = os.pipe()
    with open(write_fd, "w") as pipe, open(read_fd, "rb") as reader:
        configure_logging(stream=pipe, fmt="console")
        get_logger().error("x.error")
        reset_logging()
        pipe.close()
        out = reader.read().decode()
    assert "x.error" in out and "\x1b[" not in out


def test_a_dry_run_line_shows_the_whole_request_body() -> None:
    """`run.dry_run` at info: the body is printed in full (it is what the operator asked for),
    while another info event's long nested value is still cut."""
    stream = io.StringIO()
    configure_logging(stream=stream, fmt="console", level="info", clock=ticking_clock())
    body = {"input_dir": f"{REMOTE}/2026-03-02", "settings": {"tags": ["a" * 40, "b" * 40]}}
    get_logger().info("run.dry_run", rule="invoices", drop="2026-03-02", body=body)
    get_logger().info("drop.ready", rule="invoices", drop="2026-03-02", extra=body)
    dry, other = stream.getvalue().splitlines()
    assert '"b' + "b" * 39 + '"' in dry and "…" not in dry
    assert "…" in other
