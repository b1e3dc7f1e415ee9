"""`MetricsServer`: /metrics and /healthz over HTTP on a thread of its own.

Imports prometheus_client (its WSGI app renders the registry) and this package. The listener
never runs on the event loop; a slow scraper costs a thread, never a loop turn.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

from watcher.metrics.snapshot import Health

__all__ = ["MetricsServer"]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # Scrapes every few seconds would flood the journal; the daemon logs what matters.
        pass


class MetricsServer:
    """Serves `registry` at /metrics and `health()` at /healthz until `stop()`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], Health],
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._health = health
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        server_class = type("_BoundServer", (_Server,), {"address_family": family})
        # Binds now: a port in use is an OSError for the caller, before anything runs.
        self._server: _Server = server_class(sockaddr[:2], _QuietHandler)
        self._server.set_app(self._app)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        if path == "/healthz":
            health = self._health()
            status = "200 OK" if health.ok else "503 Service Unavailable"
            return _text(start_response, status, health.body())
        return _text(start_response, "404 Not Found", b"not found: try /metrics or /healthz\n")


def _text(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
