"""The filesystem work the pipeline does on drops: ready markers, post-run moves, gone folders.

Blocking functions, and async wrappers that run them on a thread with a deadline. Imports only
the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import structlog

from watcher.config import Rule
from watcher.model import Drop

log = structlog.get_logger("watcher.pipeline")

# A filesystem call on a drop taking longer than this (a hung NFS/SMB mount) is given up on;
# its thread finishes on its own, the loop carries on.
FS_TIMEOUT_S = 30.0


def local_path(d: Drop, rule: Rule | None) -> Path | None:
    """Where the drop was when detected; rows from before schema 4 fall back to the rule."""
    if d.local_path:
        return Path(d.local_path)
    return rule.watch / d.drop if rule is not None else None


def watch_root(d: Drop, rule: Rule | None) -> Path | None:
    """The watched folder the drop was found in."""
    path = local_path(d, rule)
    if path is None:
        return None
    for _ in d.drop.split("/"):
        path = path.parent
    return path


def marker_path(d: Drop, rule: Rule | None) -> Path | None:
    """The ready marker to remove once the run exists, if the drop had one."""
    if d.marker_path:
        return Path(d.marker_path)
    if d.local_path is None and rule is not None and rule.ready_marker:
        return rule.watch / f"{d.drop}{rule.ready_marker}"
    return None


def remove_marker(marker: Path) -> None:
    """Remove a ready marker; already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()


async def remove_marker_off_loop(marker: Path, *, drop_id: str) -> None:
    """`remove_marker` on a thread with a deadline: a hung mount must not stall the loop."""
    try:
        async with asyncio.timeout(FS_TIMEOUT_S):
            await asyncio.to_thread(remove_marker, marker)
    except (OSError, TimeoutError) as exc:
        log.warning(
            "marker.remove_failed",
            drop_id=drop_id,
            marker=str(marker),
            error="timed out" if isinstance(exc, TimeoutError) else repr(exc),
            hint="remove it by hand; the drop is submitted and will not run again",
        )


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the old file or the whole new one, never half:
    a temp file in the same folder, fsync, rename, then fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def missing(pairs: Iterable[tuple[Drop, Rule | None]], root_dev: Mapping[str, int]) -> list[Drop]:
    """Drops whose folder is gone from a watch root that is itself present and the same mount.

    An unmounted share (root missing, or an empty mountpoint on another device) proves nothing.
    """
    roots_ok: dict[Path, bool] = {}
    out: list[Drop] = []
    for d, rule in pairs:
        path, root = local_path(d, rule), watch_root(d, rule)
        if path is None or root is None:
            continue
        if root not in roots_ok:
            try:
                dev = os.stat(root).st_dev
            except OSError:
                roots_ok[root] = False
            else:
                roots_ok[root] = root_dev.get(str(root), dev) == dev
        if roots_ok[root] and not path.exists():
            out.append(d)
    return out
