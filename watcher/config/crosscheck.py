"""Checks across rules, once each rule is read: unique names, watched folders, state_dir, moves,
results folders.

Core: imports only the stdlib, `yaml` and this package.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Final

from watcher.config.keys import RULE_KEYS
from watcher.config.nodes import NodeReader
from watcher.config.templates import fixed_prefix
from watcher.config.values import Draft

__all__ = ["cross_check"]

_ACTION_KEYS: Final = tuple(s.name for s in RULE_KEYS if s.kind == "action")


def cross_check(
    reader: NodeReader, drafts: list[Draft], top: Draft, state_dir: Path | None
) -> None:
    """Record the problems that only show between rules, or between a rule and state_dir."""
    _unique_names(reader, drafts)
    watched = _watched_folders(reader, drafts)
    if state_dir is not None:
        _state_dir_outside(reader, top, state_dir, watched)
    _move_targets_outside(reader, drafts, watched)
    _results_dirs_outside(reader, drafts, watched, state_dir)


def _unique_names(reader: NodeReader, drafts: list[Draft]) -> None:
    names: dict[str, Draft] = {}
    for d in drafts:
        name = d.values.get("name")
        if not isinstance(name, str):
            continue
        if name in names:
            first = names[name]
            key, where = d.where["name"]
            line = first.where["name"][0].start_mark.line + 1
            reader.issue(
                key,
                where,
                f"duplicate rule name {name!r} (first used by rules[{first.index}] on line {line})",
            )
        else:
            names[name] = d


def _watched_folders(reader: NodeReader, drafts: list[Draft]) -> list[tuple[Draft, Path]]:
    """Each rule with a usable watch and its real path; a folder watched twice or nested is an
    error (two observers would see the same drops)."""
    watched: list[tuple[Draft, Path]] = []
    for d in drafts:
        watch = d.values.get("watch")
        if not isinstance(watch, Path):
            continue
        real = Path(os.path.realpath(watch))
        key, where = d.where["watch"]
        for other, other_real in watched:
            label = f"rules[{other.index}].watch ({other.values['watch']})"
            if real == other_real:
                reader.issue(key, where, f"is the same folder as {label}; one rule per folder")
            elif real.is_relative_to(other_real):
                reader.issue(key, where, f"is inside {label}; watched folders must not nest")
            elif other_real.is_relative_to(real):
                reader.issue(key, where, f"contains {label}; watched folders must not nest")
        watched.append((d, real))
    return watched


def _state_dir_outside(
    reader: NodeReader, top: Draft, state_dir: Path, watched: list[tuple[Draft, Path]]
) -> None:
    real_state = Path(os.path.realpath(state_dir))
    for d, real in watched:
        if not real_state.is_relative_to(real):
            continue
        label = f"rules[{d.index}].watch ({d.values['watch']})"
        if "state_dir" in top.where:
            key, where = top.where["state_dir"]
            reader.issue(key, where, f"{state_dir} is inside the watched folder {label}")
        else:
            key, where = d.where["watch"]
            reader.issue(
                key,
                where,
                f"contains the state directory {state_dir} (state_dir unset: from"
                " $STATE_DIRECTORY or the default); set state_dir outside it",
            )


def _move_targets_outside(
    reader: NodeReader, drafts: list[Draft], watched: list[tuple[Draft, Path]]
) -> None:
    for d in drafts:
        for action in _ACTION_KEYS:
            value = d.values.get(action)
            if not (isinstance(value, str) and value.startswith("move:")):
                continue
            target = Path(os.path.realpath(value[len("move:") :]))
            for w, real in watched:
                if target.is_relative_to(real):
                    key, where = d.where[action]
                    reader.issue(
                        key,
                        where,
                        f"move target is inside rules[{w.index}].watch ({w.values['watch']});"
                        " moved drops would be detected again",
                    )
                    break


def _results_base(template: str, rule: str) -> Path:
    """The deepest folder that holds every results file of a rule, whatever the drop and date."""
    fixed, complete = fixed_prefix(template, {"rule": rule})
    base = fixed if complete else posixpath.dirname(fixed)
    return Path(os.path.realpath(base or "/"))


def _results_dirs_outside(
    reader: NodeReader,
    drafts: list[Draft],
    watched: list[tuple[Draft, Path]],
    state_dir: Path | None,
) -> None:
    for d in drafts:
        template, name = d.values.get("results_dir"), d.values.get("name")
        if not (isinstance(template, str) and isinstance(name, str)):
            continue
        base = _results_base(template, name)
        key, where = d.where["results_dir"]
        for w, real in watched:
            if base.is_relative_to(real):
                reader.issue(
                    key,
                    where,
                    f"results_dir is inside rules[{w.index}].watch ({w.values['watch']});"
                    " saved results would be detected as drops",
                )
                break
        if state_dir is not None and base.is_relative_to(os.path.realpath(state_dir)):
            reader.issue(key, where, f"results_dir is inside state_dir ({state_dir})")
