"""Reading a local file to upload: one byte range of it as an iterator of chunks (so memory does
not grow with the file), checked against the size the caller expects.

Pure file I/O: imports only `watcher.hub.errors`; never httpx, config, ledger or pipeline.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from watcher.hub.errors import UploadSourceError

__all__ = ["CHUNK_BYTES", "open_range"]

# Big enough that per-chunk overhead is noise next to the copy; small enough to never matter.
CHUNK_BYTES: Final = 1024 * 1024


@contextmanager
def open_range(
    path: Path, *, offset: int, length: int, file_size: int | None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Iterator[bytes]]:
    """Open `path` and yield an iterator of its bytes [offset, offset + length) in chunks of at
    most `chunk_bytes`; the file is closed on exit, whether or not the iterator was finished.

    The size is checked on open and again before the range's last chunk is handed out, so a
    body cut short by a change never reaches its declared length (the server stores nothing).
    With `file_size`, the file must be exactly that long; without, at least offset + length.

    Raises:
        ValueError: a negative offset or length, or a non-positive chunk size.
        UploadSourceError: the file cannot be opened or read, is not a regular file, or its
            size is not as expected (on open, or while the iterator runs).
    """
    if offset < 0 or length < 0 or chunk_bytes < 1:
        raise ValueError("offset and length must not be negative, chunk_bytes must be positive")
    expected = file_size if file_size is not None else offset + length
    if file_size is not None and offset + length > file_size:
        raise ValueError(f"range {offset}+{length} ends past file_size {file_size}")
    where = str(path)
    try:
        # O_NONBLOCK: a FIFO put where a file was must not hang the open; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UploadSourceError(
            f"cannot open: {exc.strerror or exc}",
            local_path=where,
            expected_size=expected,
            actual_size=None,
        ) from exc
    try:
        check = _SizeCheck(fd, where, expected, exact=file_size is not None)
        check()
        yield _chunks(fd, check, offset, length, chunk_bytes)
    finally:
        os.close(fd)


class _SizeCheck:
    """Compares the open file's size with what the caller said; raises UploadSourceError."""

    def __init__(self, fd: int, where: str, expected: int, *, exact: bool) -> None:
        self.fd, self.where, self.expected, self.exact = fd, where, expected, exact

    def fail(self, message: str, actual: int | None) -> UploadSourceError:
        return UploadSourceError(
            message, local_path=self.where, expected_size=self.expected, actual_size=actual
        )

    def __call__(self) -> None:
        try:
            st = os.fstat(self.fd)
        except OSError as exc:
            raise self.fail(f"cannot stat: {exc.strerror or exc}", None) from exc
        if not stat.S_ISREG(st.st_mode):
            raise self.fail("not a regular file", None)
        if st.st_size != self.expected and (self.exact or st.st_size < self.expected):
            want = "" if self.exact else "at least "
            raise self.fail(
                f"size on disk is {st.st_size} bytes, expected {want}{self.expected}: "
                "the file changed",
                st.st_size,
            )


def _chunks(fd: int, check: _SizeCheck, offset: int, length: int, size: int) -> Iterator[bytes]:
    """The range's bytes; re-checks the size before the last chunk leaves."""
    pos, end = offset, offset + length
    while pos < end:
        try:
            chunk = os.pread(fd, min(size, end - pos), pos)
        except OSError as exc:
            raise check.fail(f"cannot read: {exc.strerror or exc}", None) from exc
        if not chunk:
            raise check.fail(f"ended at {pos} bytes while being sent: the file changed", pos)
        pos += len(chunk)
        if pos >= end:
            check()
        yield chunk
