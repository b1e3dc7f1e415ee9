"""The post-run actions on a drop folder, each safe to repeat after a crash at any point.

Plain blocking functions; the finisher runs them on a thread with a deadline. Imports nothing
from `watcher`.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# A move across filesystems copies here first, then renames: a crash mid-copy leaves only this,
# which the next attempt removes, never a half-copied folder under the drop's own name.
STAGING_PREFIX = ".aihub-moving-"
# Names tried after a clash: <name>-<drop_id>, then <name>-<drop_id>-2, -3, ...
MAX_SUFFIXES = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did: `target` for a move; `already` when an earlier attempt did it."""

    target: Path | None = None
    already: bool = False


def delete(source: Path) -> Outcome:
    """Remove the drop folder; already gone counts as done."""
    try:
        shutil.rmtree(source)
    except FileNotFoundError:
        return Outcome(already=True)
    return Outcome()


def move(source: Path, target_dir: Path, drop_id: str) -> Outcome:
    """Move the drop folder into `target_dir`. A name already taken gets the drop id (then a
    number) appended: never a merge, never a move into the existing folder."""
    done = _moved_before(source, target_dir, drop_id)
    if done is not None:
        return Outcome(target=done, already=True)
    if not source.exists():
        return Outcome(already=True)
    target_dir.mkdir(parents=True, exist_ok=True)
    for target in _candidates(target_dir, source.name, drop_id):
        if target.exists() or target.is_symlink():
            continue
        try:
            _rename_or_copy(source, target, drop_id)
        except FileExistsError:
            continue  # taken meanwhile: try the next name
        return Outcome(target=target)
    raise FileExistsError(errno.EEXIST, f"no free name for {source.name} in {target_dir}")


def _candidates(target_dir: Path, name: str, drop_id: str) -> list[Path]:
    names = [name, f"{name}-{drop_id}"]
    names += [f"{name}-{drop_id}-{i}" for i in range(2, MAX_SUFFIXES)]
    return [target_dir / n for n in names]


def _moved_before(source: Path, target_dir: Path, drop_id: str) -> Path | None:
    """The target an earlier attempt moved the drop to, once the source is gone."""
    if source.exists():
        return None
    for target in _candidates(target_dir, source.name, drop_id)[:2]:
        if target.is_dir():
            return target
    return None


def _rename_or_copy(source: Path, target: Path, drop_id: str) -> None:
    try:
        # rename(2) onto an existing non-empty folder fails, and onto an empty one replaces
        # it: either way nothing is merged. The exists() check above makes the empty case rare.
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(exc.errno, str(exc)) from exc
        if exc.errno != errno.EXDEV:
            raise
    staging = target.parent / f"{STAGING_PREFIX}{drop_id}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, symlinks=True)
    os.rename(staging, target)
    shutil.rmtree(source)
