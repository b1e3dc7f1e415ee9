"""What a name alone says: still being written, hidden, or one of our batch temp folders.

Core and pure: no I/O, imports nothing from `watcher`. The one home of the batch temp prefix
and of the in-progress patterns (config checks templates against them; fs scans with them).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from functools import lru_cache

# Files-mode batches are assembled under this hidden name, then renamed into place, so no scan
# ever sees a half-filled batch. One left over by a crash is recovered at the next attach.
BATCH_TEMP_PREFIX = ".aihub-batch-"

IN_PROGRESS_PATTERNS: tuple[str, ...] = (
    "*.part",
    "*.partial",
    "*.tmp",
    "*.crdownload",
    "*.download",
    "*.filepart",
    "~$*",  # Office owner file
    ".~lock.*#",  # LibreOffice lock
    ".*.swp",  # vim swap
    ".syncthing.*.tmp",
)

# rsync writes `.name.XXXXXX` (leading dot, the name, a dot, 6 random alphanumerics), then renames.
_RSYNC_TEMP = r"\..+\.[A-Za-z0-9]{6}"


@lru_cache(maxsize=64)
def _matcher(extra: tuple[str, ...]) -> re.Pattern[str]:
    # One regex for all globs: scans test every name of 100,000-file trees against it.
    globs = [fnmatch.translate(p.casefold()) for p in IN_PROGRESS_PATTERNS + extra]
    return re.compile("|".join([f"(?:{_RSYNC_TEMP})\\Z", *globs]), re.DOTALL)


def is_in_progress(name: str, extra: Sequence[str] = ()) -> bool:
    """True when a file name says "still being written" (built-ins, rsync temps, or `extra` globs).

    Matching is case-insensitive (`REPORT.PART` is a partial download too) and on the name only.
    """
    return _matcher(tuple(extra)).match(name.casefold()) is not None


def is_hidden(name: str) -> bool:
    return name.startswith(".")
