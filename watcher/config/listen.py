"""The `metrics.listen` address: `host:port` (IPv6 as `[::1]:9464`), parsed and checked once.

Core: imports only the stdlib and `watcher.config.checks`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

from watcher.config.checks import At

__all__ = ["check_listen", "is_loopback_host", "parse_listen"]

_HOSTNAME_RE: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
_EXAMPLE: Final = 'e.g. "127.0.0.1:9464" or "[::1]:9464"'


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` -> (host, port); port 0 means any free port.

    Raises:
        ValueError: not `host:port` with a host name or IP address and a port 0-65535.
    """
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, {_EXAMPLE}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, {_EXAMPLE}")
    elif not _HOSTNAME_RE.match(host):
        raise ValueError(f"{host!r} is not a host name or IP address")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 0 to 65535 (got {port_text!r})")
    return host, int(port_text)


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(value: str | None, at: At) -> Any:
    if value is None or not value.strip():
        return None  # `listen: ${METRICS_LISTEN:-}` means "off"
    try:
        host, _port = parse_listen(value)
    except ValueError as exc:
        return at.error(f"is not a listen address: {exc}")
    if not is_loopback_host(host):
        at.warn(
            f"/metrics and /healthz on {host} are open to the network without authentication;"
            " firewall the port or listen on 127.0.0.1"
        )
    return value.strip()
