"""Filesystem walks for detection: a watch root's top level, one drop's tree, files-mode batches.

Blocking I/O: callers run these off the event loop. Symlinks are never followed. Imports only
`watcher.settle` (pure); never logs (callers log once, from what the results say).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from watcher.model import FileEntry, Scan
from watcher.settle import LooseFile, is_hidden, is_in_progress

# Files-mode batches are assembled under this hidden name, then renamed into place, so no scan
# ever sees a half-filled batch. One left over by a crash is recovered at the next attach.
BATCH_TEMP_PREFIX = ".aihub-batch-"


@dataclass(frozen=True, slots=True, kw_only=True)
class RootListing:
    """The top level of a watch folder, as one `os.scandir` saw it."""

    dirs: Mapping[str, int]  # visible subfolder -> mtime_ns
    files: Mapping[str, LooseFile]  # visible regular files that are not in progress
    in_progress: tuple[str, ...]  # top-level names matching an in-progress pattern
    orphans: tuple[str, ...]  # our batch temp folders (BATCH_TEMP_PREFIX...)
    skipped: tuple[str, ...]  # symlinks and special files


def root_identity(root: str) -> tuple[int, int]:
    """(st_dev, st_ino) of a usable watch folder: exists, is a directory, can be listed.

    Raises OSError (FileNotFoundError, NotADirectoryError, PermissionError, ...) otherwise.
    """
    st = os.stat(root)
    if not os.path.isdir(root):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), root)
    with os.scandir(root):
        pass
    return st.st_dev, st.st_ino


def list_root(root: str, *, extra: Sequence[str] = ()) -> RootListing:
    """List the watch folder's top level (one lstat per entry, nothing deeper).

    Raises OSError when the watch folder itself cannot be listed.
    """
    dirs: dict[str, int] = {}
    files: dict[str, LooseFile] = {}
    in_progress: list[str] = []
    orphans: list[str] = []
    skipped: list[str] = []
    with os.scandir(root) as it:
        for entry in it:
            name = entry.name
            try:
                if entry.is_symlink():
                    skipped.append(name)
                    continue
                if name.startswith(BATCH_TEMP_PREFIX) and entry.is_dir(follow_symlinks=False):
                    orphans.append(name)
                    continue
                if is_in_progress(name, extra):
                    in_progress.append(name)
                    continue
                if is_hidden(name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    dirs[name] = entry.stat(follow_symlinks=False).st_mtime_ns
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files[name] = LooseFile(size=st.st_size, mtime_ns=st.st_mtime_ns)
                else:
                    skipped.append(name)
            except OSError:
                # Gone between readdir and stat (or unreadable): the next listing decides.
                continue
    return RootListing(
        dirs=dirs,
        files=files,
        in_progress=tuple(sorted(in_progress)),
        orphans=tuple(sorted(orphans)),
        skipped=tuple(sorted(skipped)),
    )


def scan_drop(root: str, drop: str, *, extra: Sequence[str] = ()) -> Scan | None:
    """Walk one drop folder into a `Scan`; None when the drop folder is gone (or is not a folder).

    Hidden names are left out, but in-progress patterns are checked first (rsync's `.x.AbC123`
    means "not ready"). Unreadable folders and files go to `errors`; symlinks and special files
    to `skipped`. Nothing is followed out of the drop.
    """
    top = os.path.join(root, drop)
    files: list[FileEntry] = []
    in_progress: list[str] = []
    errors: list[str] = []
    skipped: list[str] = []
    stack: list[tuple[str, str]] = [("", top)]
    while stack:
        rel_dir, path = stack.pop()
        try:
            it = os.scandir(path)
        except (FileNotFoundError, NotADirectoryError):
            if not rel_dir:
                return None
            continue  # a subfolder vanished mid-walk: the next scan will differ anyway
        except OSError as exc:
            errors.append(f"{rel_dir or '.'}: {_reason(exc)}")
            continue
        try:
            with it:
                for entry in it:
                    name = entry.name
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    if is_in_progress(name, extra):
                        in_progress.append(rel)
                        continue
                    if is_hidden(name):
                        continue
                    try:
                        if entry.is_symlink():
                            skipped.append(rel)
                        elif entry.is_dir(follow_symlinks=False):
                            stack.append((rel, entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            files.append(
                                FileEntry(rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns)
                            )
                        else:
                            skipped.append(rel)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        errors.append(f"{rel}: {_reason(exc)}")
        except OSError as exc:  # reading the directory failed part-way (EIO on a flaky share)
            errors.append(f"{rel_dir or '.'}: {_reason(exc)}")
    files.sort(key=lambda f: f.rel)
    return Scan(
        drop=drop,
        files=tuple(files),
        in_progress=tuple(sorted(in_progress)),
        errors=tuple(sorted(errors)),
        skipped=tuple(sorted(skipped)),
    )


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__


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
