"""A tiny systemd notify-protocol client (READY, STATUS, WATCHDOG, RELOADING, STOPPING).

Pure Python over an AF_UNIX datagram socket; imports no `watcher` module.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

_log = structlog.get_logger(__name__)


def _address(value: str) -> str | None:
    """The socket address for NOTIFY_SOCKET, or None when unusable ("@x" = abstract "\\0x")."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # vsock: and relative paths are not supported: treat as "not under systemd".
    return None


def _watchdog_interval_s(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    try:
        value = int(usec)
        if pid and int(pid) != os.getpid():
            # The watchdog is meant for another process (e.g. our parent): not ours to ping.
            return None
    except ValueError:
        return None
    if value <= 0:
        return None
    # Ping at half the timeout, as sd_watchdog_enabled(3) recommends.
    return value / 1e6 / 2


class Notifier:
    """Send sd_notify messages to $NOTIFY_SOCKET. A no-op when it is unset; never raises."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self.enabled: bool = self._address is not None
        self.watchdog_interval_s: float | None = _watchdog_interval_s(env)
        self._warned = False

    def __repr__(self) -> str:
        return f"Notifier(enabled={self.enabled}, watchdog_interval_s={self.watchdog_interval_s})"

    def send(self, message: str) -> bool:
        """Send one raw datagram ("KEY=value" lines). True when it was sent."""
        if self._address is None:
            return False
        try:
            # A fresh socket per message, as sd_notify() does: nothing to close or leak, and
            # messages are rare (a few per second at most).
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode("utf-8"), self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                _log.debug("sdnotify.send_failed", error=repr(exc))
            return False
        return True

    def notify(self, **fields: str) -> bool:
        """Send `KEY=value` fields in one datagram, e.g. `notify(READY="1", STATUS="ok")`."""
        # A newline inside a value would start a bogus field.
        lines = [f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items()]
        return self.send("\n".join(lines))

    def ready(self) -> None:
        """READY=1: startup (or a reload) finished."""
        self.notify(READY="1")

    def reloading(self) -> None:
        """RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects."""
        self.notify(RELOADING="1", MONOTONIC_USEC=str(time.monotonic_ns() // 1000))

    def stopping(self) -> None:
        """STOPPING=1: shutdown began."""
        self.notify(STOPPING="1")

    def status(self, text: str) -> None:
        """STATUS=<text>: shown by `systemctl status`."""
        self.notify(STATUS=text)

    def watchdog(self) -> None:
        """WATCHDOG=1: the keep-alive ping (every watchdog_interval_s)."""
        self.notify(WATCHDOG="1")
