"""The one translator: every httpx exception and every non-2xx status becomes a `Hub*` error.

Called by `watcher.hub.client` around each request, so no httpx exception leaves `watcher.hub`.
Imports only the core (`watcher.redact`) and `watcher.hub`; never config, ledger or pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import httpx

from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubRejectedError,
    HubServerError,
    HubTransportError,
)
from watcher.hub.wire import error_message, parse_retry_after
from watcher.redact import scrub

__all__ = ["REPEATABLE_METHODS", "raise_for_status", "translate_errors"]

# Methods that are safe to repeat: whatever failed, nothing is lost or doubled by sending them
# again. GET/HEAD read; AI Hub's PUTs overwrite (a batch file, a multipart part) and a DELETE of
# a batch that is already gone answers 404. A POST creates something, so its failure is ambiguous.
REPEATABLE_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE"})

# httpx failures that happen before any byte of the request can have reached the server. Everything
# else (read/write errors and timeouts, "server disconnected", undecodable bodies, ...) may follow a
# request the server already acted on, so for a POST it is ambiguous: the run (batch, session,
# commit) may exist.
_NEVER_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    # h11 refuses to emit an invalid request before writing it.
    httpx.LocalProtocolError,
    httpx.InvalidURL,
)
# Exceptions httpx raises on purpose. StreamError (a RuntimeError) only follows misuse of a streamed
# response, which this package never does: a bug, so it is left to crash.
_HTTPX_ERRORS: Final = (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict)


@contextmanager
def translate_errors(method: str, path: str, *, secret: str) -> Iterator[None]:
    """Re-raise httpx errors as ours, `from` the original unless its text shows `secret`.

    Raises:
        HubTransportError: the request never reached the server, or the method is repeatable.
        HubAmbiguousError: a POST (or another method not in REPEATABLE_METHODS) may have
            reached the server.
    """
    try:
        yield
    except _HTTPX_ERRORS as exc:
        text = str(exc)
        detail = scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, secret)
        err: HubError
        if method in REPEATABLE_METHODS or isinstance(exc, _NEVER_SENT):
            err = HubTransportError(detail, method=method, path=path)
        else:
            err = HubAmbiguousError(
                f"no response after sending ({detail}); the request may have taken effect",
                method=method,
                path=path,
            )
        # A chained original would print its unscrubbed text in every traceback.
        cause = exc if scrub(text, secret) == text else None
        raise err from cause


def raise_for_status(resp: httpx.Response, method: str, path: str, *, secret: str) -> None:
    """Raise the HubStatusError subclass for a non-2xx response; return for 2xx.

    Raises:
        HubAuthError, HubRateLimitedError, HubServerError, HubRejectedError: by status.
        HubAmbiguousError: a 504 to a POST (the origin may have acted on it).
    """
    code = resp.status_code
    if 200 <= code < 300:
        return
    message = scrub(error_message(resp), secret)
    kw: dict[str, Any] = {"method": method, "path": path, "http_status": code}
    if code in (401, 403):
        raise HubAuthError(message, **kw)
    if code == 429:
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        raise HubRateLimitedError(message, retry_after_s=retry_after, **kw)
    if code == 504 and method not in REPEATABLE_METHODS:
        # A gateway stopped waiting for the origin, which may still have created the run.
        raise HubAmbiguousError(
            f"HTTP 504: {message}; the request may have taken effect", method=method, path=path
        )
    # 408: the server gave up waiting for the request, so it was not processed: transient.
    if code >= 500 or code == 408:
        raise HubServerError(message, **kw)
    if 300 <= code < 400 and "location" in resp.headers:
        # Redirects are never followed (they would resend the token): base_url is wrong.
        message = scrub(f"unexpected redirect to {resp.headers['location']}", secret)
    raise HubRejectedError(message, **kw)
