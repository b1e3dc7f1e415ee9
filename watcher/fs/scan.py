"""Filesystem walks for detection: a watch root's top level and one drop's tree.

Blocking I/O: callers run these off the event loop. Symlinks are never followed. Imports only
`watcher.model` and its own package; never logs (callers log once, from what the results say).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from watcher.fs.groups import LooseFile
from watcher.model import FileEntry, Scan
from watcher.names import BATCH_TEMP_PREFIX, is_hidden, is_in_progress

# One drop's scan from a worker thread: (scan or None when gone, marker present), or its error.
ScanResult = tuple[Scan | None, bool] | Exception


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


def identity_or_none(root: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the watch folder, None when it cannot be stat'ed."""
    try:
        st = os.stat(root)
    except OSError:
        return None
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


def list_root_checked(root: str, extra: Sequence[str]) -> tuple[tuple[int, int], RootListing]:
    """The watch folder's identity and its listing, in one hop (`OSError` as for `list_root`)."""
    st = os.stat(root)
    return (st.st_dev, st.st_ino), list_root(root, extra=extra)


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


def scan_drops(
    root: str, drops: Sequence[str], extra: Sequence[str], marker: str | None
) -> list[ScanResult]:
    """Scan several drops in one worker-thread hop; one drop's failure is its result alone."""
    results: list[ScanResult] = []
    for drop in drops:
        try:
            results.append(_scan_with_marker(root, drop, extra, marker))
        except Exception as exc:
            results.append(exc)
    return results


def _scan_with_marker(
    root: str, drop: str, extra: Sequence[str], marker: str | None
) -> tuple[Scan | None, bool]:
    scan = scan_drop(root, drop, extra=extra)
    marked = bool(marker) and os.path.isfile(os.path.join(root, f"{drop}{marker}"))
    return scan, marked
