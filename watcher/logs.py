"""structlog setup (JSON off a TTY, console on one), stdlib routing, and secret redaction.

Imports only the core `watcher.redact` (the mask and the minimum secret length it shares with
the hub): every other layer may log through it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from watcher.redact import MASK, MIN_SECRET_LENGTH, scrub

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

# `Bearer <anything>` is masked whether or not the token was registered.
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s'\"]+")
_MAX_DEPTH: Final = 32
# Keys whose values the renderer itself must see unchanged (ConsoleRenderer formats the
# traceback; the rendered string is redacted afterwards).
_PASSTHROUGH_KEYS: Final = frozenset({"exc_info"})

_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()
_handler: logging.Handler | None = None


# --- redaction ---------------------------------------------------------------------------


def register_secret(value: str) -> None:
    """Mask `value` everywhere in every later log line (values shorter than
    `watcher.redact.MIN_SECRET_LENGTH` are ignored; see there why)."""
    global _secrets  # noqa: PLW0603 -- one process-wide registry, swapped atomically
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value not in _secrets:
            # Longest first, so a secret that contains another is masked whole.
            _secrets = tuple(sorted({*_secrets, value}, key=len, reverse=True))


def redact_text(text: str) -> str:
    """`text` with every registered secret and every `Bearer <token>` masked."""
    for secret in _secrets:
        text = scrub(text, secret)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return text


def _redact_bytes(value: bytes) -> str:
    for secret in _secrets:
        value = value.replace(secret.encode("utf-8"), MASK.encode())
    return redact_text(repr(value))


def _redact_value(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return redact_text(repr(value))
    if isinstance(value, bytes | bytearray):
        return _redact_bytes(bytes(value))
    if isinstance(value, Mapping):
        return {_redact_key(k): _redact_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact_value(v, depth + 1) for v in value)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        return redact_text(path) if isinstance(path, str) else _redact_bytes(path)
    # Exceptions and any other object: the renderer would use repr() anyway; do it here so
    # the text can be checked.
    return redact_text(repr(value))


def _redact_key(key: Any) -> Any:
    return redact_text(key) if isinstance(key, str) else key


def redact_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every key and value, recursively."""
    return {
        _redact_key(key): value if key in _PASSTHROUGH_KEYS else _redact_value(value)
        for key, value in event_dict.items()
    }


class _RedactedRenderer:
    """Wraps the final renderer and masks its output string too (console tracebacks, and any
    escaping that could re-form a secret)."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method, event_dict)
        if isinstance(rendered, bytes):
            rendered = rendered.decode("utf-8", "replace")
        return redact_text(str(rendered))


# --- configuration -----------------------------------------------------------------------


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure_logging(
    *, level: str = "info", fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Configure structlog and stdlib logging once for the process (calling again replaces the
    previous setup). `fmt="auto"` renders JSON lines unless `stream` is a TTY."""
    global _handler  # noqa: PLW0603 -- the one handler we own on the root logger
    try:
        numeric_level = LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}") from None
    out = sys.stdout if stream is None else stream
    console = fmt == "console" or (fmt == "auto" and _is_tty(out))

    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    renderer: Processor
    if console:
        # ConsoleRenderer formats exc_info itself; plain_traceback never prints frame locals
        # (rich's would, and could truncate a token past the reach of the string mask).
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_tty(out), exception_formatter=structlog.dev.plain_traceback
        )
    else:
        final.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    # Redaction runs last before the renderer, after the traceback became text.
    final += [redact_processor, _RedactedRenderer(renderer)]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=final,
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
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
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


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; works before `configure_logging` (structlog defaults) and after."""
    if name is None:
        return structlog.stdlib.get_logger()
    return structlog.stdlib.get_logger(name)
