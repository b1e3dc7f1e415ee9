"""How issue messages name values and kinds, and the did-you-mean guess for an unknown key.

Core: imports only the stdlib.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Final

__all__ = ["KIND_NOUN", "describe", "short", "suggest"]

KIND_NOUN: Final[Mapping[str, str]] = {
    "str": "a string",
    "path": "a path (string)",
    "template": "a template string",
    "choice": "a string",
    "action": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "globs": "a list of glob patterns",
    "settings": "a mapping",
    "group": "a mapping",
    "section": "a mapping",
}


def describe(value: object) -> str:
    """What a plain YAML value is, in words: "a string", "a list", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return "a date"
    return type(value).__name__


def short(value: object) -> str:
    """The value's repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggest(key: str, valid: list[str]) -> str:
    """ "did you mean 'x'?" for a near valid key, else the list of valid keys."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid keys: " + ", ".join(valid)
