"""Secret redaction for log lines: the process-wide registry, the structlog processor, and the
wrapper that masks a renderer's output string.

Imports only the core `watcher.redact` (the mask and the minimum length it shares with the hub).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any, Final

from structlog.types import EventDict, WrappedLogger

from watcher.redact import MASK, MIN_SECRET_LENGTH, scrub

# `Bearer <anything>` is masked whether or not the token was registered.
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s'\"]+")
_MAX_DEPTH: Final = 32
# Keys whose values the renderer itself must see unchanged (the console view formats the
# traceback; the rendered string is redacted afterwards).
_PASSTHROUGH_KEYS: Final = frozenset({"exc_info"})

_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()
# Keys are a small set of field names, masked once each: key -> masked key, replaced (not
# cleared) whenever a secret is registered; capped so keys from a server cannot grow it.
_key_cache: dict[str, str] = {}
_KEY_CACHE_MAX: Final = 4096
_PLAIN: Final = frozenset({int, float, bool, type(None)})


def register_secret(value: str) -> None:
    """Mask `value` everywhere in every later log line (values shorter than
    `watcher.redact.MIN_SECRET_LENGTH` are ignored; see there why)."""
    global _secrets, _key_cache  # noqa: PLW0603 -- one process-wide registry, swapped atomically
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value not in _secrets:
            # Longest first, so a secret that contains another is masked whole.
            _secrets = tuple(sorted({*_secrets, value}, key=len, reverse=True))
            # After the secrets: a key masked with the old ones lands in the old dict.
            _key_cache = {}


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
    # Exact types first: most values are plain str and numbers (a third of an info line's cost
    # was this walk); subclasses take the isinstance checks below.
    kind = type(value)
    if kind is str:
        return redact_text(value)
    if kind in _PLAIN:
        return value
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
    if type(key) is not str:
        return redact_text(key) if isinstance(key, str) else key
    cache = _key_cache  # read before the secrets redact_text reads: see register_secret
    masked = cache.get(key)
    if masked is None:
        masked = redact_text(key)
        if len(cache) < _KEY_CACHE_MAX:
            cache[key] = masked
    return masked


def redact_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every key and value, recursively."""
    out: EventDict = {}
    for key, value in event_dict.items():
        if key in _PASSTHROUGH_KEYS:
            out[_redact_key(key)] = value
        elif type(value) is str:
            out[_redact_key(key)] = redact_text(value)
        else:
            out[_redact_key(key)] = _redact_value(value)
    return out
