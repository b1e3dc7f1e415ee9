"""The console view: one short line per event for a person at a terminal, coloured by level.

A structlog renderer; imports nothing from watcher (the caller redacts its output string).
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final

from structlog.types import EventDict, WrappedLogger

LABELS: Final[Mapping[str, str]] = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARN",
    "error": "ERROR",
    "critical": "CRIT",
}
RESET: Final = "\x1b[0m"
DIM: Final = "\x1b[2m"
COLORS: Final[Mapping[str, str]] = {
    "debug": "\x1b[34m",  # blue
    "info": "\x1b[32m",  # green
    "warning": "\x1b[33m",  # yellow
    "error": "\x1b[31m",  # red
    "critical": "\x1b[1;31m",  # bold red
}
EVENT_WIDTH: Final = 20
# A nested value (list, dict) longer than this is cut on the console below error level.
NESTED_CHARS: Final = 72
RUN_ID_CHARS: Final = 8
# Keys the line shows in fixed places (or not at all); every other key follows them as key=value.
_PLACED: Final = frozenset(
    {"timestamp", "level", "event", "logger", "rule", "drop", "run_id", "status", "latency_ms"}
)
_TRAILERS: Final = ("exception", "stack", "stack_info")
# Events whose nested values are the point of the line: never cut (`run --dry-run` shows the
# request it would send; a person running it reads the body).
UNCUT_EVENTS: Final = frozenset({"run.dry_run"})
_BARE = re.compile(r"[^\s\"'=\\]+")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class ConsoleLine:
    """structlog renderer: `HH:MM:SS LEVEL event  rule= drop= run= status= latency=  others`.

    `verbose` (the process logs at debug) shows everything in full; otherwise the AI Hub
    `response` is left out (its `msg`, the reason a run failed, is kept) and nested values are
    cut to NESTED_CHARS, except on error lines, where a person needs every detail. Fields whose
    value is None are left out (the JSON lines keep them). The time is
    local (the UTC `timestamp` converted), seconds precision.
    """

    def __init__(self, *, colors: bool, verbose: bool) -> None:
        self._colors = colors
        self._verbose = verbose

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
        level = str(event_dict.get("level", "info")).lower()
        color = COLORS.get(level, "")
        label = LABELS.get(level, level.upper())
        event = str(event_dict.get("event", ""))
        line = " ".join(
            [
                self._paint(DIM, self._clock(event_dict.get("timestamp"))),
                self._paint(color, label) + " " * (5 - len(label)),
                self._paint(color, event),
            ]
        )
        full = self._verbose or level in ("error", "critical") or event in UNCUT_EVENTS
        fields = [*self._placed(event_dict), *self._others(event_dict, full=full)]
        if fields:
            line += " " * max(1, EVENT_WIDTH + 1 - len(event)) + " ".join(fields)
        return line + self._trailer(event_dict)

    # --- the parts of a line ---------------------------------------------------------------

    def _paint(self, color: str, text: str) -> str:
        return f"{color}{text}{RESET}" if self._colors and color else text

    def _clock(self, stamp: object) -> str:
        if not isinstance(stamp, str):
            return "--:--:--"
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return stamp
        return moment.astimezone().strftime("%H:%M:%S")

    def _placed(self, ed: EventDict) -> list[str]:
        out = [f"{key}={text_of(ed[key])}" for key in ("rule", "drop") if key in ed]
        run_id = ed.get("run_id")
        if run_id is not None:
            out.append(f"run={text_of(str(run_id)[:RUN_ID_CHARS])}")
        if "status" in ed:
            out.append(f"status={text_of(ed['status'])}")
        latency = ed.get("latency_ms")
        if isinstance(latency, int | float) and not isinstance(latency, bool):
            out.append(f"latency={duration_of(latency)}")
        elif latency is not None:
            out.append(f"latency_ms={text_of(latency)}")
        return out

    def _others(self, ed: EventDict, *, full: bool) -> list[str]:
        out: list[str] = []
        logger = ed.get("logger")
        if isinstance(logger, str) and logger != "watcher" and not logger.startswith("watcher."):
            out.append(f"logger={text_of(logger)}")  # another library's line: say whose
        for key, value in ed.items():
            if key in _PLACED or key in _TRAILERS or key == "exc_info" or value is None:
                continue  # a field with no value (http_status of a timeout) is only noise here
            if key == "response" and not self._verbose:
                # The whole AI Hub answer is in the JSON lines; a person needs only its reason.
                msg = value.get("msg") if isinstance(value, Mapping) else None
                if isinstance(msg, str) and msg and "msg" not in ed:
                    out.append(f"msg={text_of(msg)}")
                continue
            limit = None if full else NESTED_CHARS
            out.append(f"{key}={text_of(value, limit=limit)}")
        return out

    def _trailer(self, ed: EventDict) -> str:
        parts: list[str] = []
        exc = exc_info_of(ed.get("exc_info"))
        if exc is not None:
            parts.append("".join(traceback.format_exception(*exc)))
        parts += [ed[key] for key in _TRAILERS if isinstance(ed.get(key), str)]
        return "".join("\n" + part.rstrip("\n") for part in parts)


# --- values ----------------------------------------------------------------------------------


def text_of(value: Any, *, limit: int | None = None) -> str:
    """A value as a person reads it: bare words bare, other strings quoted, nested values as
    compact JSON (cut to `limit` characters, with the count of items left out)."""
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) else _json(value)
    if isinstance(value, bool) or value is None:
        return _json(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        items = [f"{_json(str(k))}:{_json(v)}" for k, v in value.items()]
        return _bounded("{", items, "}", limit)
    if isinstance(value, list | tuple | set | frozenset):
        return _bounded("[", [_json(v) for v in value], "]", limit)
    return text_of(str(value))


def duration_of(ms: float) -> str:
    """Milliseconds as a person reads them: 3.2ms, 182ms, 30.0s."""
    if ms < 10:
        return f"{ms:.1f}ms"
    if ms < 10_000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}s"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _bounded(opening: str, items: list[str], closing: str, limit: int | None) -> str:
    whole = opening + ",".join(items) + closing
    if limit is None or len(whole) <= limit:
        return whole
    kept: list[str] = []
    used = len(opening) + len(closing)
    for item in items:
        if used + len(item) + 1 > limit - len(f"…+{len(items)}"):
            break
        kept.append(item)
        used += len(item) + 1
    rest = f"…+{len(items) - len(kept)}"
    return opening + ",".join([*kept, rest]) + closing


def exc_info_of(value: object) -> ExcInfo | None:
    """The (type, value, traceback) an `exc_info=` argument means: an exception, a tuple, or
    True (the exception being handled now)."""
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return type(value[1]), value[1], value[2]
    if value is True:
        current = sys.exc_info()
        if current[1] is not None:
            return type(current[1]), current[1], current[2]
    return None
