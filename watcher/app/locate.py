"""Which rule watches a path, and which drop of that rule it belongs to.

Detection's own view: a rule's drops are the top-level entries of its watch folder (folders;
in files mode also loose files, which go into a batch folder). Imports config, fs and names.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watcher.config import Config, Rule
from watcher.names import BATCH_TEMP_PREFIX, is_hidden, is_in_progress


@dataclass(frozen=True, slots=True, kw_only=True)
class Located:
    """Where a path sits in a rule's watch folder.

    kind: `folder` (a folder drop), `marker` (the ready marker of a folder drop), `loose` (a
    files-mode loose file, batched later), `gone` (nothing on disk: the ledger may know it),
    `in_progress` (an in-progress name at the top: a drop once renamed), or `excluded`.
    """

    rule: Rule
    drop: str | None
    kind: str
    note: str | None = None  # about the path inside the drop, or why it is excluded


def match_rule(config: Config, path: Path) -> tuple[Rule, PurePosixPath] | str:
    """The rule whose watch folder holds `path` (the deepest one) and the path relative to it,
    or why no rule does."""
    wanted = {Path(os.path.abspath(path)), Path(os.path.realpath(path))}
    best: tuple[int, Rule, PurePosixPath] | None = None
    for rule in config.rules:
        for root in {Path(os.path.abspath(rule.watch)), Path(os.path.realpath(rule.watch))}:
            for p in wanted:
                if p == root or root in p.parents:
                    depth = len(root.parts)
                    if best is None or depth > best[0]:
                        best = (depth, rule, PurePosixPath(p.relative_to(root).as_posix()))
    if best is not None:
        return best[1], best[2]
    watched = ", ".join(f"{r.name} → {r.watch}" for r in config.rules) or "(no rules)"
    return f"no rule watches {path}; rules watch: {watched}"


def locate(rule: Rule, rel: PurePosixPath) -> Located:
    """The drop `rel` (relative to the rule's watch folder) belongs to."""
    parts = [p for p in rel.parts if p not in ("", ".")]
    if not parts:
        what = "folders" if rule.drop == "folder" else "folders and loose files (batched)"
        return Located(
            rule=rule,
            drop=None,
            kind="excluded",
            note=f"this is rule {rule.name}'s watch folder itself; its drops are its {what}",
        )
    top, inner = parts[0], parts[1:]
    excluded = _excluded_name(rule, top)
    if excluded is not None:
        return excluded
    try:
        st = os.lstat(rule.watch / top)
    except OSError:
        return Located(rule=rule, drop=top, kind="gone")
    if stat.S_ISLNK(st.st_mode):
        return Located(rule=rule, drop=None, kind="excluded", note="symlinks are never followed")
    if stat.S_ISDIR(st.st_mode):
        return Located(rule=rule, drop=top, kind="folder", note=_inner_note(rule, inner))
    if not stat.S_ISREG(st.st_mode):
        return Located(rule=rule, drop=None, kind="excluded", note="not a file or folder")
    if rule.drop == "files":
        return Located(rule=rule, drop=top, kind="loose")
    marker = rule.ready_marker
    if marker and top.endswith(marker) and (rule.watch / top[: -len(marker)]).is_dir():
        return Located(rule=rule, drop=top[: -len(marker)], kind="marker")
    return Located(
        rule=rule,
        drop=None,
        kind="excluded",
        note="a loose file in a folder-mode watch folder: only folders are drops",
    )


def _excluded_name(rule: Rule, top: str) -> Located | None:
    if top.startswith(BATCH_TEMP_PREFIX):
        return Located(
            rule=rule,
            drop=None,
            kind="excluded",
            note="a batch folder the daemon is still filling (renamed into place when full)",
        )
    if is_in_progress(top, rule.ignore):
        return Located(
            rule=rule,
            drop=None,
            kind="in_progress",
            note=f"{top!r} matches an in-progress pattern (built-in or the rule's ignore): "
            "skipped until it is renamed",
        )
    if is_hidden(top):
        return Located(rule=rule, drop=None, kind="excluded", note="hidden names are never drops")
    return None


def _inner_note(rule: Rule, inner: list[str]) -> str | None:
    """What the scan makes of the path inside its drop folder, when it is not a plain file."""
    for i, name in enumerate(inner):
        if is_in_progress(name, rule.ignore):
            return f"{'/'.join(inner[: i + 1])} is in progress: the drop waits for it"
        if is_hidden(name):
            return f"{'/'.join(inner[: i + 1])} is hidden: left out of the drop"
    return None
