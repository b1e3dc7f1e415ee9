"""Checks between the keys of one rule, once it is read: a key required or only used with a given
`source` (KeySpec.required_when / applies_when), results_options without results_dir and tz
without active_hours.

Core: imports only the stdlib, `yaml` and this package.
"""

from __future__ import annotations

from watcher.config.checks import INVALID
from watcher.config.keys import RULE_BY_NAME
from watcher.config.nodes import NodeReader, join
from watcher.config.values import Draft

__all__ = ["check_relations"]


def check_relations(reader: NodeReader, draft: Draft) -> None:
    """Record a missing key that the rule's other values require, and warn about keys the rule
    sets that its other values make unused. Inherited values (from defaults:) never warn."""
    for name, spec in RULE_BY_NAME.items():
        if spec.required_when is not None:
            key, wanted = spec.required_when
            if draft.values.get(key) == wanted and draft.values.get(name) is None:
                _missing(reader, draft, name, f"{key}: {wanted}{_default_mark(key, wanted)}")
        if (
            spec.applies_when is not None
            and _set_here(draft, name)
            and draft.values[name] is not None
        ):
            key, wanted = spec.applies_when
            actual = draft.values.get(key)
            if actual is not INVALID and actual != wanted:
                node, where = draft.where[name]
                reader.issue(
                    node,
                    where,
                    f"{name} is only used with {key}: {wanted}; this rule has {key}: {actual},"
                    " so it is ignored",
                    severity="warning",
                )
    if _set_here(draft, "tz") and draft.values.get("active_hours") is None:
        node, where = draft.where["tz"]
        reader.issue(
            node, where, "tz has no effect without active_hours (always open)", severity="warning"
        )
    if _set_here(draft, "results_options") and draft.values.get("results_dir") is None:
        node, where = draft.where["results_options"]
        reader.issue(
            node,
            where,
            "results_options has no effect without results_dir (no results are fetched)",
            severity="warning",
        )


def _default_mark(key: str, value: str) -> str:
    return ", the default" if RULE_BY_NAME[key].default == value else ""


def _missing(reader: NodeReader, draft: Draft, name: str, condition: str) -> None:
    """A key that `condition` requires: left out (at the rule) or set to nothing (at the key)."""
    if name in draft.where:
        node, where = draft.where[name]
        reader.issue(node, where, f"must be set with {condition} (got nothing)")
    else:
        where = join(f"rules[{draft.index}]", name)
        reader.issue(draft.node, where, f"missing required key {name!r} (needed with {condition})")


def _set_here(draft: Draft, name: str) -> bool:
    """Whether the rule itself sets `name` with a usable value (not only inherits it)."""
    return (
        name in draft.where
        and name not in draft.inherited
        and draft.values.get(name) is not INVALID
    )
