"""The one error policy: what to do after a call to AI Hub failed.

Pure: no I/O, no clock. Imports only `watcher.hub.errors`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubRejectedError,
    HubResponseError,
)


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
