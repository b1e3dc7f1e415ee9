"""journald: is our log stream connected to the journal, and the `<N>` syslog priority prefix
that makes journald file each line at its level (sd-daemon(3)). Imports nothing from watcher.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final, TextIO

# sd-daemon(3): SD_CRIT "<2>", SD_ERR "<3>", SD_WARNING "<4>", SD_INFO "<6>", SD_DEBUG "<7>".
PRIORITIES: Final[Mapping[str, int]] = {
    "critical": 2,
    "exception": 3,  # structlog's log.exception(); add_log_level already calls it "error"
    "error": 3,
    "warning": 4,
    "warn": 4,
    "info": 6,
    "debug": 7,
    "notset": 7,
}
# A level we do not know (a library's custom level) is filed as info, journald's own default.
DEFAULT_PRIORITY: Final = 6


def journal_stream_matches(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the journal connection systemd named in `$JOURNAL_STREAM`.

    systemd.exec(5): the variable holds the device and inode numbers of that connection, in
    decimal, separated by ":". It stays in the environment of child processes whose output
    went elsewhere (a pipe to `jq` started from the unit's shell), so being set is not enough:
    the numbers must match an fstat() of the stream we write to.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        # No file descriptor (io.StringIO, a closed stream): not the journal.
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def priority_of(level: object) -> int:
    """The syslog priority for a log level name ("error" -> 3); unknown names -> info (6)."""
    if not isinstance(level, str):
        return DEFAULT_PRIORITY
    return PRIORITIES.get(level.lower(), DEFAULT_PRIORITY)


def with_priority(text: str, level: object) -> str:
    """`text` with `<N>` before every line: journald reads each line as its own entry, so a
    console traceback's lines keep the event's priority too. The prefix is stripped by journald;
    what follows is the line unchanged (a JSON line stays valid JSON)."""
    prefix = f"<{priority_of(level)}>"
    return "\n".join(prefix + line for line in text.split("\n"))
