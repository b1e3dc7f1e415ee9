"""One daemon per state directory: an exclusive flock on STATE_DIR/aihub-watcher.lock.

The kernel releases a flock when its holder exits in any way, kill -9 included, so a crash
never leaves a stale lock behind. Imports only the core.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from watcher.errors import AlreadyRunningError, StartupError

LOCK_FILENAME: Final = "aihub-watcher.lock"


class StateDirLock:
    """Held from startup to exit; `status` and `retry` never take it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or fail at once if another process holds it.

        Raises:
            AlreadyRunningError: another aihub-watcher holds it (the message names its pid).
            StartupError: the state directory or the lock file cannot be created.
        """
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StartupError(f"cannot create the lock file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "pid unknown"
            raise AlreadyRunningError(
                f"another aihub-watcher ({who}) holds {self.state_dir}", pid=holder
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StartupError(f"cannot lock {self.path}: {exc}") from exc
        # Ours now: record who holds it, for the message a second daemon prints.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
