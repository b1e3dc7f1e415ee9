"""The one error policy: what to do after a POST that starts a run failed.

A POST whose outcome is unknown (any 5xx, a read timeout, a reset after sending, a 2xx that is
not a run) is settled by listing runs by tag before it is ever sent again. Only answers that
prove nothing was created skip the listing: never sent (connection refused), 429, 401/403, other
4xx. Pure: no I/O, no clock. Imports only `watcher.hub.errors`; nothing else in the package
inspects statuses or error classes to decide what happens next.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Final

from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubRejectedError,
    HubResponseError,
    HubServerError,
)

# After this many failures in a row that say "the hub is unwell" (5xx, transport), across all
# drops, the hub itself is down: back off hub-wide instead of burning each drop's attempts.
OUTAGE_AFTER: Final = 5
# Back-off of a 429 that did not say how long to wait: the second step of the usual curve.
THROTTLE_FALLBACK_ATTEMPT: Final = 2


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry this drop after `delay_s`; the attempt counts."""

    delay_s: float
    unwell: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class HoldAll:
    """429: the throttle is about all of us. Hold every submission for `delay_s`; this drop goes
    back to the queue and the attempt does not count."""

    delay_s: float
    unwell: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class OutageBackoff:
    """The hub is down: hold every submission for `delay_s`; the attempt does not count."""

    delay_s: float
    unwell: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Reconcile:
    """The POST may have created the run: list runs by tag before posting again.

    `unwell`: the answer said the hub is unwell (5xx). `hold_s`: the hub looks down (an outage),
    so also hold every submission that long.
    """

    unwell: bool = False
    hold_s: float | None = None


@dataclass(frozen=True, slots=True)
class PauseHub:
    """401/403: stop all submissions until the token changes or a probe succeeds; the attempt
    does not count."""

    unwell: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Reject:
    """The request itself is wrong (other 4xx): the drop is `rejected`."""

    message: str
    unwell: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Retries exhausted: the drop is `failed` (`aihub-watcher retry` re-arms it)."""

    reason: str
    unwell: ClassVar[bool] = True


Step = Retry | HoldAll | OutageBackoff | Reconcile | PauseHub | Reject | GiveUp
"""`step.unwell` tells whether the failure counts toward the hub-wide failures in a row."""


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
    *,
    attempt: int,
    max_attempts: int,
    unwell_in_row: int = 0,
    rng: random.Random | None = None,
) -> Step:
    """Decide what to do after attempt `attempt` (1-based) of a POST failed with `exc`.

    `unwell_in_row` counts the failures in a row before this one whose step was `unwell`
    (any drop); a success resets it.
    """
    if isinstance(exc, HubAuthError):
        return PauseHub()
    if isinstance(exc, HubRateLimitedError):
        if exc.retry_after_s is not None:
            return HoldAll(max(exc.retry_after_s, 0.0))
        return HoldAll(backoff_delay_s(THROTTLE_FALLBACK_ATTEMPT, rng=rng))
    if isinstance(exc, HubRejectedError):
        return Reject(exc.message)
    if isinstance(exc, HubAmbiguousError | HubResponseError):
        # The run may exist: look before any new attempt is counted.
        return Reconcile()
    in_row = unwell_in_row + 1
    outage = in_row >= OUTAGE_AFTER
    hold_s = backoff_delay_s(in_row - OUTAGE_AFTER + 1, base_s=2.0, rng=rng) if outage else None
    if isinstance(exc, HubServerError):
        # A gateway may answer 502/503/504 after AI Hub created the run: no proof of anything.
        return Reconcile(unwell=True, hold_s=hold_s)
    # Never sent (connection refused, ...): the hub is unwell and nothing was created.
    if hold_s is not None:
        return OutageBackoff(hold_s)
    if attempt >= max_attempts:
        return GiveUp(f"{attempt} attempts failed, last: {exc}")
    return Retry(backoff_delay_s(attempt, rng=rng))
