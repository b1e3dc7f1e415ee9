"""Reading what journald would receive: `<N>` + the line, per line, as sd-daemon(3) defines it."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from typing import Any

# sd-daemon(3): SD_CRIT <2>, SD_ERR <3>, SD_WARNING <4>, SD_INFO <6>, SD_DEBUG <7>.
SD_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
_PREFIXED = re.compile(rb"<([0-7])>(.*)")


def journal_stream_of(sock: socket.socket) -> str:
    """The `JOURNAL_STREAM` value systemd would set for this connection: "device:inode"."""
    st = os.fstat(sock.fileno())
    return f"{st.st_dev}:{st.st_ino}"


def parse_prefixed(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """Every line as (priority, JSON object); fails on a line without `<N>` or not JSON after it."""
    out = []
    for raw in data.splitlines():
        match = _PREFIXED.fullmatch(raw)
        assert match, f"no <N> priority prefix: {raw[:200]!r}"
        event = json.loads(match.group(2))
        assert isinstance(event, dict), raw
        out.append((int(match.group(1)), event))
    return out


def assert_priorities_match_levels(lines: list[tuple[int, dict[str, Any]]]) -> set[str]:
    """Each line's priority is the one for its JSON `level`; returns the levels seen."""
    for priority, event in lines:
        assert priority == SD_PRIORITY[event["level"]], (priority, event)
    return {event["level"] for _, event in lines}


class StreamReader:
    """Reads one end of a socketpair on a thread until EOF, like journald reading a service."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="journal-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while chunk := self._sock.recv(65536):
            with self._lock:
                self._chunks.append(chunk)

    def data(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def complete_lines(self) -> bytes:
        data = self.data()
        return data[: data.rfind(b"\n") + 1]

    def join(self, timeout: float = 10) -> bytes:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the writer never closed its end"
        self._sock.close()
        return self.data()
