"""Typed values of a section: each key converted by its KeySpec, unknown keys, `settings`.

Core: imports only the stdlib, `yaml` and this package. Fills a `Draft` per section.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import yaml

from watcher.config.checks import INVALID, At, check_action, glob_problem
from watcher.config.keys import (
    SETTINGS_KEYS,
    SETTINGS_KEYS_KEYS,
    TAGS_DAEMON_RESERVE,
    TAGS_MAX_TOTAL,
    KeySpec,
)
from watcher.config.nodes import NodeReader, join

__all__ = ["Draft", "convert", "read_section", "report_unknown"]

_KIND_NOUN: Final[Mapping[str, str]] = {
    "str": "a string",
    "path": "a path (string)",
    "template": "a template string",
    "choice": "a string",
    "action": "a string",
    "int": "an integer",
    "number": "a number",
    "globs": "a list of glob patterns",
    "settings": "a mapping",
    "section": "a mapping",
}


@dataclass(slots=True)
class Draft:
    """A rule (or the defaults) being validated: values and where each came from."""

    index: int
    node: yaml.Node
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, tuple[yaml.Node, str]] = field(default_factory=dict)


def _describe(value: object) -> str:
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


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid keys: " + ", ".join(valid)


def _json_problem(value: object) -> str | None:
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "is not a finite number"
    if isinstance(value, list):
        for item in value:
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for item in value.values():
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    return f"holds {_describe(value)}, which JSON cannot carry (quote it)"


# -- one key --


def convert(reader: NodeReader, spec: KeySpec, key: yaml.Node, node: yaml.Node, path: str) -> Any:
    """One key's value, type- and range-checked, normalised; INVALID when it is not usable."""
    if spec.kind == "settings":
        return _settings(reader, key, node, path)
    raw = reader.plain(node, path)
    if raw is INVALID:
        return INVALID
    at = At(reader, key, path)
    if raw is None:
        if spec.kind == "globs":
            return ()
        if spec.nullable:
            return spec.check(None, at) if spec.check else None
        hint = "" if spec.required else f"; leave the key out for the default {spec.default!r}"
        return at.error(f"expected {_KIND_NOUN[spec.kind]}, got nothing{hint}")
    value: Any
    if spec.kind in ("str", "path", "choice", "action", "template"):
        value = _text(reader, spec, raw, node, at)
    elif spec.kind in ("int", "number"):
        value = _number(spec, raw, at)
    elif spec.kind == "globs":
        return _globs(reader, key, node, raw, path)
    else:  # pragma: no cover - sections are walked by their own functions
        raise AssertionError(spec.kind)
    if value is INVALID or value is None:
        return value  # None: an empty nullable path, which means "not set" and needs no check
    return spec.check(value, at) if spec.check else value


def _text(reader: NodeReader, spec: KeySpec, raw: Any, node: yaml.Node, at: At) -> Any:
    """A string-like value: str, path, choice, action or template."""
    noun = _KIND_NOUN[spec.kind]
    if spec.kind == "choice" and not isinstance(raw, str):
        return at.error(f"must be one of: {', '.join(spec.choices)} (got {_describe(raw)})")
    if not isinstance(raw, str):
        quote = ""
        if isinstance(node, yaml.ScalarNode) and not isinstance(raw, list | dict):
            quote = f' (quote it: "{node.value}")'
        return at.error(f"expected {noun}, got {_describe(raw)}{quote}")
    if spec.kind == "path":
        if not raw.strip():
            # `token_file: ${TOKEN_FILE:-}` means "not set"; a required path can't be empty.
            return None if spec.nullable else at.error("must not be empty")
        value = Path(raw)
        if spec.relative_to_config and not value.is_absolute():
            value = reader.base_dir / value
        return value
    if spec.kind == "choice" and raw not in spec.choices:
        close = difflib.get_close_matches(raw, spec.choices, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return at.error(f"must be one of: {', '.join(spec.choices)} (got {_short(raw)}){hint}")
    if spec.kind == "action":
        return check_action(raw, at, choices=spec.choices)
    return raw


def _number(spec: KeySpec, raw: Any, at: At) -> Any:
    """An int or number value, within the spec's range."""
    ok = isinstance(raw, int | float) and not isinstance(raw, bool)
    if spec.kind == "int":
        ok = isinstance(raw, int) and not isinstance(raw, bool)
    if not ok:
        return at.error(f"expected {_KIND_NOUN[spec.kind]}, got {_describe(raw)} ({_short(raw)})")
    if isinstance(raw, float) and not math.isfinite(raw):
        return at.error(f"expected a finite number, got {raw}")
    problem = _range_problem(spec, raw)
    if problem:
        return at.error(problem)
    return raw if spec.kind == "int" else float(raw)


def _range_problem(spec: KeySpec, value: float) -> str | None:
    unit = " seconds" if spec.name.endswith("_seconds") else ""
    lo, hi, gt = spec.minimum, spec.maximum, spec.exclusive_minimum
    if gt is not None and value <= gt:
        tail = f" and at most {hi:g}{unit}" if hi is not None else ""
        return f"must be greater than {gt:g}{tail} (got {value:g})"
    if lo is not None and hi is not None and not lo <= value <= hi:
        return f"must be between {lo:g} and {hi:g}{unit} (got {value:g})"
    if hi is not None and value > hi:
        return f"must be at most {hi:g}{unit} (got {value:g})"
    if lo is not None and value < lo:
        return f"must be at least {lo:g}{unit} (got {value:g})"
    return None


def _globs(reader: NodeReader, key: yaml.Node, node: yaml.Node, raw: Any, path: str) -> Any:
    if not isinstance(raw, list):
        return At(reader, key, path).error(
            f'expected a list of glob patterns, got {_describe(raw)} (write ["*.tmp"])'
        )
    items = node.value if isinstance(node, yaml.SequenceNode) else []
    bad = False
    for i, (pattern, item) in enumerate(zip(raw, items, strict=True)):
        where = f"{path}[{i}]"
        if not isinstance(pattern, str):
            reader.issue(item, where, f"expected a glob pattern string, got {_describe(pattern)}")
            bad = True
            continue
        problem = glob_problem(pattern)
        if problem:
            reader.issue(item, where, problem)
            bad = True
    return INVALID if bad else tuple(raw)


# -- settings: sent to the API as-is, so only their shape is checked --


def _settings(reader: NodeReader, key: yaml.Node, node: yaml.Node, path: str) -> Any:
    at = At(reader, key, path)
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return {}
    if not isinstance(node, yaml.MappingNode):
        return at.error("expected a mapping with keys, runtime_config and/or tags")
    out: dict[str, Any] = {}
    bad = False
    for name, (k, v) in reader.entries(node, path).items():
        where = join(path, name)
        if name not in SETTINGS_KEYS:
            reader.issue(
                k, where, f"unknown settings key {name!r}; {_suggest(name, [*SETTINGS_KEYS])}"
            )
            bad = True
            continue
        value = reader.plain(v, where)
        if value is INVALID:
            bad = True
            continue
        problem = _json_problem(value)
        if problem:
            reader.issue(k, where, problem)
            bad = True
            continue
        if not _settings_value(reader, name, value, key=k, node=v, path=where):
            bad = True
            continue
        out[name] = value
    return INVALID if bad else out


def _settings_value(
    reader: NodeReader, name: str, value: Any, *, key: yaml.Node, node: yaml.Node, path: str
) -> bool:
    at = At(reader, key, path)
    if name == "tags":
        return _tags_ok(value, at)
    if not isinstance(value, dict):
        at.error(f"expected a mapping, got {_describe(value)}")
        return False
    if name == "keys" and isinstance(node, yaml.MappingNode):
        ok = True
        for sub, (k, _v) in reader.entries(node, path).items():
            where = join(path, sub)
            if sub not in SETTINGS_KEYS_KEYS:
                reader.issue(
                    k,
                    where,
                    f"unknown settings key {sub!r}; {_suggest(sub, [*SETTINGS_KEYS_KEYS])}",
                )
                ok = False
            elif not isinstance(value[sub], dict):
                reader.issue(k, where, f"expected a mapping, got {_describe(value[sub])}")
                ok = False
            elif sub == "secret" and not all(isinstance(s, str) for s in value[sub].values()):
                reader.issue(k, where, "secret values must be strings (names of vault secrets)")
                ok = False
        return ok
    return True


def _tags_ok(value: Any, at: At) -> bool:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        at.error("expected a list of strings")
        return False
    total = sum(len(t) for t in value)
    budget = TAGS_MAX_TOTAL - TAGS_DAEMON_RESERVE
    if total > budget:
        at.error(
            f"tags total {total} characters; the API allows {TAGS_MAX_TOTAL} in all and the"
            f" daemon adds one tag of its own (up to {TAGS_DAEMON_RESERVE}), so a rule's"
            f" tags may total at most {budget}"
        )
        return False
    return True


# -- a section --


def report_unknown(
    reader: NodeReader,
    entries: Mapping[str, tuple[yaml.Node, yaml.Node]],
    valid: Mapping[str, KeySpec],
    path: str,
    hints: Mapping[str, str],
) -> None:
    """An issue for each key not in `valid`: the hint for a known misplacement, else a guess."""
    names = list(valid)
    for name, (key, _value) in entries.items():
        if name in valid:
            continue
        where = join(path, name)
        if name in hints:
            reader.issue(key, where, f"unknown key {name!r}: {hints[name]}")
        else:
            reader.issue(key, where, f"unknown key {name!r}; {_suggest(name, names)}")


def read_section(
    reader: NodeReader,
    node: yaml.MappingNode,
    specs: Mapping[str, KeySpec],
    path: str,
    *,
    hints: Mapping[str, str],
    draft: Draft,
    inherited: Draft | None = None,
    require: bool = True,
) -> Draft:
    """Fill `draft` from a mapping: own values, else inherited ones, else the table's defaults.

    With `require=False` (the `defaults:` section) only keys that are present are filled.
    """
    entries = reader.entries(node, path)
    report_unknown(reader, entries, specs, path, hints)
    for name, spec in specs.items():
        where = join(path, name)
        if name in entries:
            key, value = entries[name]
            draft.values[name] = convert(reader, spec, key, value, where)
            draft.where[name] = (key, where)
        elif inherited is not None and name in inherited.values:
            draft.values[name] = inherited.values[name]
            draft.where[name] = inherited.where[name]
        elif spec.required and require:
            reader.issue(node, where, f"missing required key {name!r}")
            draft.values[name] = INVALID
        elif require:
            draft.values[name] = spec.default
    return draft
