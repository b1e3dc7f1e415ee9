"""Files-mode batch folders: settled loose files moved into a new folder; a crash's leftovers.

Blocking I/O: callers run these off the event loop. Imports only `watcher.model` and its own
package; the batch temp prefix comes from `watcher.names`, its one home.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from watcher.fs.scan import scan_drop
from watcher.model import Scan
from watcher.names import BATCH_TEMP_PREFIX


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """A files-mode group moved into its own folder."""

    name: str  # the batch folder, relative to watch
    moved: tuple[str, ...]  # file names that were moved into it
    missing: tuple[str, ...]  # names that were gone by the time of the move
    scan: Scan | None


def move_into_batch(
    root: str, names: Iterable[str], *, name_for: Callable[[int], str], extra: Sequence[str] = ()
) -> Batch | None:
    """Move loose files into a new batch folder inside `root`; None when none of them was left.

    The folder is filled under a hidden temp name and renamed into place only when complete.
    `name_for(attempt)` proposes the final name; attempt 0, 1, ... until one is free.
    os.rename keeps mtimes, so the batch's scan matches what settled.
    """
    tmp = tempfile.mkdtemp(prefix=BATCH_TEMP_PREFIX, dir=root)
    moved: list[str] = []
    missing: list[str] = []
    for name in names:
        try:
            os.rename(os.path.join(root, name), os.path.join(tmp, name))
            moved.append(name)
        except FileNotFoundError:
            missing.append(name)
    if not moved:
        os.rmdir(tmp)
        return None
    final = place_batch(root, tmp, name_for=name_for)
    return Batch(
        name=final,
        moved=tuple(moved),
        missing=tuple(missing),
        scan=scan_drop(root, final, extra=extra),
    )


def place_batch(root: str, tmp: str, *, name_for: Callable[[int], str]) -> str:
    """Rename a filled temp folder to the first free name that `name_for` proposes."""
    for attempt in range(10_000):
        name = name_for(attempt)
        target = os.path.join(root, name)
        # rename(2) would silently replace an empty folder of that name: look first.
        if os.path.lexists(target):
            continue
        try:
            os.rename(tmp, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue
            raise
        return name
    raise FileExistsError(errno.EEXIST, "no free batch folder name", root)


def recover_batch(root: str, path: str, *, name_for: Callable[[int], str]) -> str | None:
    """Finish a batch temp folder left by a crash mid-move: its final name, None when empty."""
    try:
        os.rmdir(path)  # empty: nothing was moved yet
        return None
    except OSError:
        pass
    return place_batch(root, path, name_for=name_for)
