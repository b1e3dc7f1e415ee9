"""`KeySpec`, the declaration of one config key, and what is derived from a table of them.

Core: imports only the stdlib and `watcher.config.checks`. The key tables are in keys*.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from watcher.config import checks

Kind = Literal[
    "str",
    "int",
    "number",
    "bool",
    "path",
    "choice",
    "action",
    "template",
    "globs",
    "settings",
    "group",
    "section",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """One config key: its type, documentation, default and range.

    The validator, the dataclass defaults, `json_schema()` and the drift test over
    config.example.yaml all read these.
    """

    name: str
    kind: Kind
    doc: str  # one line; config.example.yaml carries it verbatim as the key's comment
    default: Any = None
    required: bool = False
    nullable: bool = False  # `null` (or leaving the key out) means None
    choices: tuple[str, ...] = ()  # choice: the values; action: the values besides move:<dir>
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    allow_seq: bool = False  # template: {seq} allowed
    relative_to_config: bool = False  # path: a relative value is resolved against the file's folder
    check: checks.Check | None = None  # extra semantic check; returns the value or INVALID
    # group: a mapping whose keys are declared here (unknown ones are errors); `hints` explains
    # a known wrong key instead of guessing a near one.
    keys: tuple[KeySpec, ...] = ()
    hints: tuple[tuple[str, str], ...] = ()
    # (key, value): this key is required when the rule's `key` is `value` (after defaults) ...
    required_when: tuple[str, str] | None = None
    # ... and only used then: a rule that sets it with another value gets a warning.
    applies_when: tuple[str, str] | None = None


def defaults_of(specs: tuple[KeySpec, ...]) -> Mapping[str, Any]:
    """name -> default of every key that may be left out (the dataclasses' field defaults)."""
    return MappingProxyType({s.name: s.default for s in specs if not s.required})
