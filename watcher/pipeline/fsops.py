"""The filesystem work the pipeline does on drops: ready markers, post-run moves, gone folders.

Plain blocking functions; callers decide which thread runs them. Imports only the core.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from watcher.config import Rule
from watcher.model import Drop


def remove_marker(rule: Rule, drop: str) -> None:
    """Remove the drop's ready marker (`<drop><ready_marker>`), if the rule uses one."""
    if not rule.ready_marker:
        return
    marker = rule.watch / f"{drop}{rule.ready_marker}"
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()


def move_aside(source: Path, target_dir: Path, drop_id: str) -> Path:
    """Move `source` into `target_dir`; a name already there gets the drop id as a suffix."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    if target.exists():
        target = target_dir / f"{source.name}-{drop_id}"
    shutil.move(str(source), str(target))
    return target


def delete_tree(source: Path) -> None:
    shutil.rmtree(source)


def missing(pairs: Iterable[tuple[Drop, Rule | None]], root_dev: Mapping[str, int]) -> list[Drop]:
    """Drops whose folder is gone from a watch root that is itself present and the same mount.

    An unmounted share (root missing, or an empty mountpoint on another device) proves nothing.
    """
    roots_ok: dict[str, bool] = {}
    out: list[Drop] = []
    for d, rule in pairs:
        if rule is None:
            continue
        if rule.name not in roots_ok:
            try:
                dev = os.stat(rule.watch).st_dev
            except OSError:
                roots_ok[rule.name] = False
            else:
                roots_ok[rule.name] = root_dev.get(rule.name, dev) == dev
        if roots_ok[rule.name] and not (rule.watch / d.drop).exists():
            out.append(d)
    return out
