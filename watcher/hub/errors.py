"""The hub's errors: every failure of a call to AI Hub, as `hub.client` reports it, and the one
local failure of an upload (its source file changed while being sent).

Adapter-level types: imports only `watcher.errors`. What to do about each one is decided in
`watcher.hub.policy`, and nowhere else.

    WatcherError
    ├── UploadSourceError         .local_path .expected_size .actual_size: the local file changed
    └── HubError                  .method .path (never the token)
        ├── HubTransportError     never reached the server (connect, pool timeout), or a
        │                         repeatable GET/HEAD/PUT/DELETE failed (see hub.translate)
        ├── HubAmbiguousError     POST sent, no answer: read timeout, reset after sending
        ├── HubResponseError      2xx whose body does not match the spec
        └── HubStatusError        .http_status .message (the server's)
            ├── HubAuthError          401/403
            ├── HubRateLimitedError   429 .retry_after_s
            ├── HubServerError        5xx
            └── HubRejectedError      other 4xx

`HubAmbiguousError` is a sibling of `HubTransportError`, not a child, so a generic transport
handler can never re-post a run that may already exist. `UploadSourceError` is not a HubError:
the hub did nothing wrong and retrying the same bytes cannot help; the drop changed under us.
"""

from __future__ import annotations

from watcher.errors import WatcherError


class HubError(WatcherError):
    """A request to AI Hub failed. Carries the method and path, never headers or the token."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: {message}")


class HubTransportError(HubError):
    """The request never reached the server (or was a repeatable GET/HEAD/PUT/DELETE): retry."""


class HubNotSentError(HubTransportError):
    """The request was not sent: its send deadline (`send_before`) had passed when the bytes
    were about to go out. Nothing reached the server."""


class HubAmbiguousError(HubError):
    """A POST was sent but no answer came back: the run may exist. Reconcile before re-posting."""


class HubResponseError(HubError):
    """The server answered 2xx with a body that does not match the API description."""


class HubStatusError(HubError):
    """The server answered with an error status."""

    def __init__(self, message: str, *, method: str, path: str, http_status: int) -> None:
        self.http_status = http_status
        self.message = message
        super().__init__(f"HTTP {http_status}: {message}", method=method, path=path)


class HubAuthError(HubStatusError):
    """401/403: the token is missing, wrong or expired. Pause the hub until it changes."""


class HubRateLimitedError(HubStatusError):
    """429: retry after `retry_after_s` seconds (None when the server did not say)."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        http_status: int = 429,
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, method=method, path=path, http_status=http_status)


class HubServerError(HubStatusError):
    """5xx: the server failed; retry with backoff."""


class HubRejectedError(HubStatusError):
    """Any other 4xx: the request itself is wrong; retrying will not help."""


class UploadSourceError(WatcherError):
    """The local file of an upload is not the one the caller described: its size on disk is not
    the expected size (it grew, shrank, or was replaced), or it can no longer be read.

    Raised before or while its bytes are sent; a body cut short this way is never completed, so
    the server cannot store a partial file. `actual_size` is None when the file is unreadable.
    """

    def __init__(
        self,
        message: str,
        *,
        local_path: str,
        expected_size: int,
        actual_size: int | None,
    ) -> None:
        self.local_path = local_path
        self.expected_size = expected_size
        self.actual_size = actual_size
        super().__init__(f"{local_path}: {message}")
