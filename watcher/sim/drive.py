"""The simulated synced drive: remote path a/b/c.pdf is the local file DRIVE_ROOT/a/b/c.pdf.

A file is visible only sync_lag_s seconds after its last local change (its mtime), as a sync
client would upload it; folders are visible as soon as they exist. Imports no watcher module
outside sim/.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from watcher.sim.files import FileInfo
from watcher.sim.runs import InputFile


def local_path(root: Path, remote: str) -> Path | None:
    """The local path for a remote one, or None when it would leave `root` or is malformed."""
    parts = remote.strip("/").split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        return None
    return root.joinpath(*parts)


def lookup(root: Path, remote: str, lag_s: float) -> FileInfo | bool:
    """What HEAD sees at `remote`: a visible file, True for a folder, else False."""
    path = local_path(root, remote)
    if path is None:
        return False
    try:
        st = path.stat()
    except (OSError, ValueError):
        return False
    if stat.S_ISDIR(st.st_mode):
        return True
    if not stat.S_ISREG(st.st_mode) or not _synced(st.st_mtime, lag_s):
        return False
    return FileInfo(st.st_size, st.st_mtime)


def visible_files(root: Path, remote_dir: str, lag_s: float) -> tuple[InputFile, ...]:
    """The files a run on `remote_dir` sees now (relative path, size), by path; none when the
    folder is not on the drive."""
    top = local_path(root, remote_dir)
    if top is None or not top.is_dir():
        return ()
    seen: list[InputFile] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath, name)
            try:
                st = path.stat()
            except OSError:
                continue  # gone since the listing
            if stat.S_ISREG(st.st_mode) and _synced(st.st_mtime, lag_s):
                seen.append(InputFile(path.relative_to(top).as_posix(), st.st_size))
    seen.sort(key=lambda f: f.path)
    return tuple(seen)


def _synced(mtime: float, lag_s: float) -> bool:
    return lag_s <= 0 or time.time() - mtime >= lag_s
