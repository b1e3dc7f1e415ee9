"""Logging for every layer: structlog setup (JSON lines off a terminal, a one-line console view
on one), journald priorities, and secret redaction. Imports only the core `watcher.redact`.

`setup` configures, `console` renders for a person, `journal` speaks to journald, `redaction`
keeps the token out of every line.
"""

from __future__ import annotations

from watcher.logs.redaction import redact_processor, redact_text, register_secret
from watcher.logs.setup import (
    LEVELS,
    QUIET_LOGGERS,
    LogFormat,
    configure_logging,
    get_logger,
    reset_logging,
)
from watcher.redact import MASK

__all__ = [
    "LEVELS",
    "MASK",
    "QUIET_LOGGERS",
    "LogFormat",
    "configure_logging",
    "get_logger",
    "redact_processor",
    "redact_text",
    "register_secret",
    "reset_logging",
]
