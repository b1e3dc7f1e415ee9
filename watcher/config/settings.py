"""A rule's `settings`: sent to the API as-is, so only their shape and the tag budget are checked.

Core: imports only the stdlib, `yaml` and this package.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from watcher.config.checks import INVALID, At
from watcher.config.describe import describe, suggest
from watcher.config.keys import (
    SETTINGS_KEYS,
    SETTINGS_KEYS_KEYS,
    TAGS_DAEMON_RESERVE,
    TAGS_MAX_TOTAL,
)
from watcher.config.nodes import NodeReader, join

__all__ = ["read_settings"]


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
    return f"holds {describe(value)}, which JSON cannot carry (quote it)"


# -- settings: sent to the API as-is, so only their shape is checked --


def read_settings(reader: NodeReader, key: yaml.Node, node: yaml.Node, path: str) -> Any:
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
                k, where, f"unknown settings key {name!r}; {suggest(name, [*SETTINGS_KEYS])}"
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
        at.error(f"expected a mapping, got {describe(value)}")
        return False
    if name == "keys" and isinstance(node, yaml.MappingNode):
        ok = True
        for sub, (k, _v) in reader.entries(node, path).items():
            where = join(path, sub)
            if sub not in SETTINGS_KEYS_KEYS:
                reader.issue(
                    k,
                    where,
                    f"unknown settings key {sub!r}; {suggest(sub, [*SETTINGS_KEYS_KEYS])}",
                )
                ok = False
            elif not isinstance(value[sub], dict):
                reader.issue(k, where, f"expected a mapping, got {describe(value[sub])}")
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
