"""Typed values of a section: each key converted by its KeySpec, groups, unknown keys, defaults.

Core: imports only the stdlib, `yaml` and this package. Fills a `Draft` per section.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from watcher.config.checks import INVALID, At, check_action, glob_problem
from watcher.config.describe import KIND_NOUN, describe, short, suggest
from watcher.config.keys import KeySpec
from watcher.config.nodes import NodeReader, join
from watcher.config.settings import read_settings

__all__ = ["Draft", "convert", "read_section", "report_unknown"]


@dataclass(slots=True)
class Draft:
    """A rule (or the defaults) being validated: values and where each came from."""

    index: int
    node: yaml.Node
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, tuple[yaml.Node, str]] = field(default_factory=dict)
    inherited: set[str] = field(default_factory=set)  # keys whose value is the defaults' alone


# -- one key --


def convert(reader: NodeReader, spec: KeySpec, key: yaml.Node, node: yaml.Node, path: str) -> Any:
    """One key's value, type- and range-checked, normalised; INVALID when it is not usable."""
    if spec.kind == "settings":
        return read_settings(reader, key, node, path)
    if spec.kind == "group":
        return _group(reader, spec, key, node, path)
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
        return at.error(f"expected {KIND_NOUN[spec.kind]}, got nothing{hint}")
    value: Any
    if spec.kind in ("str", "path", "choice", "action", "template"):
        value = _text(reader, spec, raw, node, at)
    elif spec.kind in ("int", "number"):
        value = _number(spec, raw, at)
    elif spec.kind == "bool":
        value = raw if isinstance(raw, bool) else at.error(f"expected true or false, {_got(raw)}")
    elif spec.kind == "globs":
        return _globs(reader, key, node, raw, path)
    else:  # pragma: no cover - sections are walked by their own functions
        raise AssertionError(spec.kind)
    if value is INVALID or value is None:
        return value  # None: an empty nullable path, which means "not set" and needs no check
    return spec.check(value, at) if spec.check else value


def _text(reader: NodeReader, spec: KeySpec, raw: Any, node: yaml.Node, at: At) -> Any:
    """A string-like value: str, path, choice, action or template."""
    noun = KIND_NOUN[spec.kind]
    if spec.kind == "choice" and not isinstance(raw, str):
        return at.error(f"must be one of: {', '.join(spec.choices)} (got {describe(raw)})")
    if not isinstance(raw, str):
        quote = ""
        if isinstance(node, yaml.ScalarNode) and not isinstance(raw, list | dict):
            quote = f' (quote it: "{node.value}")'
        return at.error(f"expected {noun}, got {describe(raw)}{quote}")
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
        return at.error(f"must be one of: {', '.join(spec.choices)} (got {short(raw)}){hint}")
    if spec.kind == "action":
        return check_action(raw, at, choices=spec.choices)
    return raw


def _number(spec: KeySpec, raw: Any, at: At) -> Any:
    """An int or number value, within the spec's range."""
    ok = isinstance(raw, int | float) and not isinstance(raw, bool)
    if spec.kind == "int":
        ok = isinstance(raw, int) and not isinstance(raw, bool)
    if not ok:
        return at.error(f"expected {KIND_NOUN[spec.kind]}, {_got(raw)}")
    if isinstance(raw, float) and not math.isfinite(raw):
        return at.error(f"expected a finite number, got {raw}")
    problem = _range_problem(spec, raw)
    if problem:
        return at.error(problem)
    return raw if spec.kind == "int" else float(raw)


def _got(raw: Any) -> str:
    return f"got {describe(raw)} ({short(raw)})"


def _range_problem(spec: KeySpec, value: float) -> str | None:
    units = {"_seconds": " seconds", "_bytes": " bytes"}
    unit = next((u for end, u in units.items() if spec.name.endswith(end)), "")
    lo, hi, gt = spec.minimum, spec.maximum, spec.exclusive_minimum
    if gt is not None and value <= gt:
        tail = f" and at most {_num(hi)}{unit}" if hi is not None else ""
        return f"must be greater than {_num(gt)}{tail} (got {_num(value)})"
    if lo is not None and hi is not None and not lo <= value <= hi:
        return f"must be between {_num(lo)} and {_num(hi)}{unit} (got {_num(value)})"
    if hi is not None and value > hi:
        return f"must be at most {_num(hi)}{unit} (got {_num(value)})"
    if lo is not None and value < lo:
        return f"must be at least {_num(lo)}{unit} (got {_num(value)})"
    return None


def _num(value: float) -> str:
    """A number as written in a config: 0.05, 86400, 104857600 (not 1.04858e+08)."""
    if float(value).is_integer() and abs(value) < 1e18:
        return str(int(value))
    return f"{value:g}"


def _globs(reader: NodeReader, key: yaml.Node, node: yaml.Node, raw: Any, path: str) -> Any:
    if not isinstance(raw, list):
        return At(reader, key, path).error(
            f'expected a list of glob patterns, got {describe(raw)} (write ["*.tmp"])'
        )
    items = node.value if isinstance(node, yaml.SequenceNode) else []
    bad = False
    for i, (pattern, item) in enumerate(zip(raw, items, strict=True)):
        where = f"{path}[{i}]"
        if not isinstance(pattern, str):
            reader.issue(item, where, f"expected a glob pattern string, got {describe(pattern)}")
            bad = True
            continue
        problem = glob_problem(pattern)
        if problem:
            reader.issue(item, where, problem)
            bad = True
    return INVALID if bad else tuple(raw)


def _group(reader: NodeReader, spec: KeySpec, key: yaml.Node, node: yaml.Node, path: str) -> Any:
    """A mapping of declared keys (upload, results_options): the keys given, each converted."""
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return {}
    specs = {s.name: s for s in spec.keys}
    if not isinstance(node, yaml.MappingNode):
        return At(reader, key, path).error(f"expected a mapping with {', '.join(specs)}")
    entries = reader.entries(node, path)
    report_unknown(reader, entries, specs, path, dict(spec.hints))
    bad = any(name not in specs for name in entries)
    out: dict[str, Any] = {}
    for name, (k, v) in entries.items():
        if name in specs:
            out[name] = convert(reader, specs[name], k, v, join(path, name))
            bad = bad or out[name] is INVALID
    return INVALID if bad else out


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
            reader.issue(key, where, f"unknown key {name!r}; {suggest(name, names)}")


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

    A group (upload, results_options) merges key by key: each of its keys comes from the rule,
    else from the defaults, else from the table. With `require=False` (the `defaults:` section)
    only keys that are present are filled.
    """
    entries = reader.entries(node, path)
    report_unknown(reader, entries, specs, path, hints)
    for name, spec in specs.items():
        where = join(path, name)
        base = inherited.values.get(name) if inherited is not None else None
        if name in entries:
            key, value = entries[name]
            own = convert(reader, spec, key, value, where)
            if spec.kind == "group" and isinstance(own, dict) and isinstance(base, dict):
                own = {**base, **own}
            draft.values[name] = own
            draft.where[name] = (key, where)
        elif inherited is not None and name in inherited.values:
            draft.values[name] = base
            draft.where[name] = inherited.where[name]
            draft.inherited.add(name)
        elif spec.required and require:
            reader.issue(node, where, f"missing required key {name!r}")
            draft.values[name] = INVALID
        elif require:
            draft.values[name] = spec.default
    return draft
