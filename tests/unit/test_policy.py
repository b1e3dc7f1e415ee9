"""The one error policy as a table: every kind of hub failure -> exactly one action."""

from __future__ import annotations

import random

import pytest

from watcher.hub.errors import (
    HubAmbiguousError,
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubRejectedError,
    HubResponseError,
    HubServerError,
    HubTransportError,
)
from watcher.hub.policy import (
    OUTAGE_AFTER,
    GiveUp,
    HoldAll,
    OutageBackoff,
    PauseHub,
    Reconcile,
    Reject,
    Retry,
    backoff_delay_s,
    next_step,
)

WHERE = {"method": "POST", "path": "/v2/apps/deployments/d/runs"}
AUTH = HubAuthError("bad token", http_status=401, **WHERE)
FORBIDDEN = HubAuthError("no access", http_status=403, **WHERE)
THROTTLED = HubRateLimitedError("slow down", retry_after_s=7.0, **WHERE)
THROTTLED_BARE = HubRateLimitedError("slow down", **WHERE)
REJECTED = HubRejectedError("bad input_dir", http_status=422, **WHERE)
SERVER = HubServerError("oops", http_status=503, **WHERE)
TRANSPORT = HubTransportError("connection refused", **WHERE)
AMBIGUOUS = HubAmbiguousError("read timeout", **WHERE)
NOT_A_RUN = HubResponseError("response is not a run", **WHERE)


@pytest.mark.parametrize(
    ("exc", "attempt", "unwell_in_row", "expected"),
    [
        # 401/403 pause the hub, whatever the attempt: no drop is burned on a bad token.
        (AUTH, 1, 0, PauseHub()),
        (FORBIDDEN, 9, 4, PauseHub()),
        # 429 holds every submission for Retry-After, and never gives a drop up.
        (THROTTLED, 1, 0, HoldAll(7.0)),
        (THROTTLED, 99, 99, HoldAll(7.0)),
        # Other 4xx: the request is wrong, retrying will not help.
        (REJECTED, 1, 0, Reject("bad input_dir")),
        # The run may exist: list by tag before anything else, attempts or not.
        (AMBIGUOUS, 1, 0, Reconcile()),
        (AMBIGUOUS, 9, 9, Reconcile()),
        (NOT_A_RUN, 1, 0, Reconcile()),
        # Retryable until max_attempts (5 here), then given up.
        (SERVER, 5, 0, GiveUp("5 attempts failed, last: " + str(SERVER))),
        (TRANSPORT, 5, 0, GiveUp("5 attempts failed, last: " + str(TRANSPORT))),
    ],
)
def test_each_failure_maps_to_one_action(
    exc: HubError, attempt: int, unwell_in_row: int, expected: object
):
    """The table of what happens next, for each kind of failure."""
    assert next_step(exc, attempt=attempt, max_attempts=5, unwell_in_row=unwell_in_row) == expected


@pytest.mark.parametrize("exc", [SERVER, TRANSPORT])
def test_retryable_failures_back_off_exponentially(exc: HubError):
    """5xx and transport failures retry with jittered exponential back-off, capped."""
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]:
        step = next_step(exc, attempt=attempt, max_attempts=9, rng=rng)
        assert isinstance(step, Retry)
        assert 0.5 <= step.delay_s <= ceiling


@pytest.mark.parametrize("exc", [SERVER, TRANSPORT])
def test_an_outage_backs_off_hub_wide_instead_of_burning_attempts(exc: HubError):
    """The OUTAGE_AFTER-th unwell failure in a row is an outage, even on a drop's last attempt."""
    below = next_step(exc, attempt=1, max_attempts=5, unwell_in_row=OUTAGE_AFTER - 2)
    assert isinstance(below, Retry)
    at = next_step(exc, attempt=5, max_attempts=5, unwell_in_row=OUTAGE_AFTER - 1)
    assert isinstance(at, OutageBackoff) and 1.0 <= at.delay_s <= 2.0
    deeper = next_step(exc, attempt=5, max_attempts=5, unwell_in_row=OUTAGE_AFTER + 6)
    assert isinstance(deeper, OutageBackoff) and deeper.delay_s <= 300


def test_a_429_without_retry_after_still_holds():
    """A 429 that names no delay holds for the second back-off step (0.5 to 2 s)."""
    step = next_step(THROTTLED_BARE, attempt=1, max_attempts=5, rng=random.Random(2))
    assert isinstance(step, HoldAll) and 0.5 <= step.delay_s <= 2.0


def test_only_hub_failures_count_toward_an_outage():
    """`unwell` marks the steps that say the hub is down; the others leave the streak alone."""
    assert Retry(1).unwell and OutageBackoff(1).unwell and GiveUp("x").unwell
    assert not (HoldAll(1).unwell or Reconcile().unwell or PauseHub().unwell)
    assert not Reject("x").unwell


def test_backoff_is_capped_and_never_below_half_the_base():
    """Full jitter in [base/2, min(cap, base * 2**(attempt-1))]."""
    rng = random.Random(5)
    delays = [backoff_delay_s(30, base_s=1.0, cap_s=300.0, rng=rng) for _ in range(200)]
    assert all(0.5 <= d <= 300.0 for d in delays)
    assert max(delays) > 150  # the cap, not the exponent, bounds attempt 30
