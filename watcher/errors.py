"""The whole exception tree, and the one function that turns a hub error into an action.

A leaf module: it imports nothing from `watcher`, so every other module may import it.

    WatcherError
    ├── ConfigError               .issues
    ├── TokenError                no usable token (message says where to put one, never the token)
    ├── LedgerError
    └── HubError                  .method .path (never the token)
        ├── HubTransportError     never reached the server (connect, pool timeout), or a GET failed
        ├── HubAmbiguousError     POST sent, no answer: read timeout, reset after sending
        ├── HubResponseError      2xx whose body does not match the spec
        └── HubStatusError        .http_status .message (the server's)
            ├── HubAuthError          401/403
            ├── HubRateLimitedError   429 .retry_after_s
            ├── HubServerError        5xx
            └── HubRejectedError      other 4xx

`HubAmbiguousError` is a sibling of `HubTransportError`, not a child, so a generic transport
handler can never re-post a run that may already exist.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    """One problem found in a config file, pointing at the offending key."""

    file: str
    line: int
    col: int
    key_path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {self.key_path}: {prefix}{self.message}"


class WatcherError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(WatcherError):
    """The config file has one or more errors; `.issues` lists all of them (warnings too)."""

    def __init__(self, issues: tuple[ConfigIssue, ...] | list[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        errors = [i for i in self.issues if i.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in config:\n" + "\n".join(map(str, errors)))


class TokenError(WatcherError):
    """No API token could be read from the configured sources."""


class LedgerError(WatcherError):
    """The ledger database cannot be opened or is unusable."""


class HubError(WatcherError):
    """A request to AI Hub failed. Carries the method and path, never headers or the token."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: {message}")


class HubTransportError(HubError):
    """The request never reached the server (or was a safe-to-repeat GET): retry."""


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


# --- what to do about an error -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    delay_s: float


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Look for the run before posting again (the last POST may have created it)."""


@dataclass(frozen=True, slots=True)
class PauseHub:
    """Stop all submissions to this hub until the token changes or a probe succeeds."""


@dataclass(frozen=True, slots=True)
class Reject:
    message: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


Step = Retry | Reconcile | PauseHub | Reject | GiveUp


def backoff_delay_s(
    attempt: int,
    *,
    base_s: float = 1.0,
    cap_s: float = 300.0,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff, full jitter: uniform in [base/2, min(cap, base * 2**(attempt-1))]."""
    ceiling = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    r = rng.random() if rng is not None else random.random()
    return max(base_s / 2, ceiling * r)


def next_step(
    exc: HubError,
    attempt: int,
    *,
    max_attempts: int,
    base_delay_s: float = 1.0,
    max_delay_s: float = 300.0,
    rng: random.Random | None = None,
) -> Step:
    """Decide what to do after `attempt` (1-based) failed with `exc`.

    Nothing else in the package inspects HTTP status codes.
    """
    if isinstance(exc, HubAuthError):
        return PauseHub()
    if isinstance(exc, HubRejectedError):
        return Reject(exc.message)
    if isinstance(exc, HubAmbiguousError | HubResponseError):
        # The run may exist: look before any new attempt is counted.
        return Reconcile()
    if attempt >= max_attempts:
        return GiveUp(f"{attempt} attempts failed, last: {exc}")
    if isinstance(exc, HubRateLimitedError) and exc.retry_after_s is not None:
        return Retry(max(exc.retry_after_s, 0.0))
    return Retry(backoff_delay_s(attempt, base_s=base_delay_s, cap_s=max_delay_s, rng=rng))
