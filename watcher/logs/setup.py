"""configure_logging: structlog and stdlib logging set up once, JSON off a terminal and the
console view on one, redaction last, and journald priorities when stdout is the journal.

Our own events take structlog's native path (a level-filtering bound logger whose processors
render the line and a `_LineWriter` that writes it), not the stdlib bridge: a third of the cost
of an info line was the LogRecord, Formatter and Handler round trip (bench/PERF13.md). Records
from libraries (watchdog, httpx) still go through the stdlib root handler, rendered by the same
processors; both write through that handler's lock, so lines never interleave.

Imports only the other `watcher.logs` modules and the core `watcher.redact`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from watcher.logs.console import ConsoleLine
from watcher.logs.journal import journal_stream_matches, with_priority
from watcher.logs.redaction import redact_processor, redact_text

LogFormat = Literal["auto", "json", "console"]

LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# Chatty libraries (httpx logs every request at INFO) stay at WARNING or above.
QUIET_LOGGERS: Final = ("httpx", "httpcore")

_handler: logging.StreamHandler[TextIO] | None = None


class _LineWriter:
    """structlog's logger for our own events: one rendered line per call, to the stream of the
    handler `configure_logging` installed, under that handler's lock, flushed (as the stdlib
    StreamHandler does). `name` is what `add_logger_name` puts in `logger`."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"_LineWriter({self.name!r})"

    def msg(self, line: str) -> None:
        handler = _handler
        if handler is None:  # reset_logging ran while a line was in flight
            return
        handler.acquire()
        try:
            handler.stream.write(line + "\n")
            handler.stream.flush()
        except (OSError, ValueError):  # a closed or broken stdout: the line is lost, as in stdlib
            pass
        finally:
            handler.release()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _line_writer(*args: object) -> _LineWriter:
    return _LineWriter(args[0] if args and isinstance(args[0], str) else "")


class _FinalRenderer:
    """Wraps the renderer: masks its output string (console tracebacks, and any escaping that
    could re-form a secret), then puts the journald priority before each line when asked."""

    def __init__(self, renderer: Processor, *, journal: bool) -> None:
        self._renderer = renderer
        self._journal = journal

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        level = event_dict.get("level", method)
        rendered = self._renderer(logger, method, event_dict)
        if isinstance(rendered, bytes):
            rendered = rendered.decode("utf-8", "replace")
        text = redact_text(str(rendered))
        return with_priority(text, level) if self._journal else text


class _Stamper:
    """`timestamp`: ISO 8601 in UTC with microseconds and a Z, from `clock` (seconds)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        moment = datetime.fromtimestamp(self._clock(), UTC)
        event_dict["timestamp"] = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return event_dict


def _shared_processors(clock: Callable[[], float]) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _Stamper(clock),
    ]


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def wants_color(stream: TextIO) -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set and not empty (no-color.org).
    A console view forced into a pipe or a file stays plain: escape codes there are noise."""
    return _is_tty(stream) and not os.environ.get("NO_COLOR")


def _renderer(out: TextIO, fmt: LogFormat, numeric_level: int) -> list[Processor]:
    """The processors after the shared chain: the traceback as text, redaction, the renderer."""
    final: list[Processor] = []
    renderer: Processor
    if fmt == "console" or (fmt == "auto" and _is_tty(out)):
        # The console view formats exc_info itself, without frame locals (which could hold a
        # token cut short, out of reach of the string mask).
        renderer = ConsoleLine(colors=wants_color(out), verbose=numeric_level <= logging.DEBUG)
    else:
        final.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    # Redaction runs last before the renderer, after the traceback became text.
    return [*final, redact_processor, _FinalRenderer(renderer, journal=journal_stream_matches(out))]


def configure_logging(
    *,
    level: str = "info",
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Configure structlog and stdlib logging once for the process (calling again replaces the
    previous setup). `fmt="auto"` renders JSON lines unless `stream` is a TTY. Lines get a
    journald `<N>` priority prefix when `stream` is the connection `$JOURNAL_STREAM` names.
    `clock` (seconds since the epoch) stamps every line; tests pass a fixed one."""
    global _handler  # noqa: PLW0603 -- the one handler we own on the root logger
    try:
        numeric_level = LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}") from None
    out = sys.stdout if stream is None else stream

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(clock),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(out, fmt, numeric_level),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.setLevel(numeric_level)

    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    _handler = handler
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))

    structlog.configure(
        processors=[
            *_shared_processors(clock),
            structlog.processors.StackInfoRenderer(),
            *_renderer(out, fmt, numeric_level),
        ],
        logger_factory=_line_writer,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # Not cached: module-level loggers follow a later reconfigure (tests, --log-format).
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Undo `configure_logging` (tests): remove our root handler, restore structlog defaults."""
    global _handler  # noqa: PLW0603
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None
    structlog.reset_defaults()


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; works before `configure_logging` (structlog defaults) and after."""
    if name is None:
        return structlog.get_logger()
    return structlog.get_logger(name)
