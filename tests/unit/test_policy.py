"""The one error policy as a table: every kind of hub failure -> exactly one action."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.hub_helpers import call_and_catch, http_date, json_response, make_client
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
        # A 5xx is no proof that nothing was created (a gateway may answer after AI Hub made
        # the run): list by tag first, on any attempt. It says the hub is unwell.
        (SERVER, 1, 0, Reconcile(unwell=True)),
        (SERVER, 5, 0, Reconcile(unwell=True)),
        # Never sent: retryable until max_attempts (5 here), then given up.
        (TRANSPORT, 5, 0, GiveUp("5 attempts failed, last: " + str(TRANSPORT))),
    ],
)
def test_each_failure_maps_to_one_action(
    exc: HubError, attempt: int, unwell_in_row: int, expected: object
):
    """The table of what happens next, for each kind of failure."""
    assert next_step(exc, attempt=attempt, max_attempts=5, unwell_in_row=unwell_in_row) == expected


def test_requests_never_sent_back_off_exponentially():
    """Transport failures (nothing reached the server) retry with jittered, capped back-off."""
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]:
        step = next_step(TRANSPORT, attempt=attempt, max_attempts=9, rng=rng)
        assert isinstance(step, Retry)
        assert 0.5 <= step.delay_s <= ceiling


def test_an_outage_backs_off_hub_wide_instead_of_burning_attempts():
    """The OUTAGE_AFTER-th unwell failure in a row is an outage, even on a drop's last attempt."""
    below = next_step(TRANSPORT, attempt=1, max_attempts=5, unwell_in_row=OUTAGE_AFTER - 2)
    assert isinstance(below, Retry)
    at = next_step(TRANSPORT, attempt=5, max_attempts=5, unwell_in_row=OUTAGE_AFTER - 1)
    assert isinstance(at, OutageBackoff) and 1.0 <= at.delay_s <= 2.0
    deeper = next_step(TRANSPORT, attempt=5, max_attempts=5, unwell_in_row=OUTAGE_AFTER + 6)
    assert isinstance(deeper, OutageBackoff) and deeper.delay_s <= 300


def test_a_5xx_in_an_outage_is_still_reconciled_and_holds_the_hub():
    """In an outage a 5xx still settles by listing (its run may exist), and holds everyone."""
    below = next_step(SERVER, attempt=1, max_attempts=5, unwell_in_row=OUTAGE_AFTER - 2)
    assert below == Reconcile(unwell=True)
    at = next_step(SERVER, attempt=5, max_attempts=5, unwell_in_row=OUTAGE_AFTER - 1)
    assert isinstance(at, Reconcile) and at.unwell
    assert at.hold_s is not None and 1.0 <= at.hold_s <= 2.0


def test_a_429_without_retry_after_still_holds():
    """A 429 that names no delay holds for the second back-off step (0.5 to 2 s)."""
    step = next_step(THROTTLED_BARE, attempt=1, max_attempts=5, rng=random.Random(2))
    assert isinstance(step, HoldAll) and 0.5 <= step.delay_s <= 2.0


def test_only_hub_failures_count_toward_an_outage():
    """`unwell` marks the steps that say the hub is down; the others leave the streak alone."""
    assert Retry(1).unwell and OutageBackoff(1).unwell and GiveUp("x").unwell
    assert Reconcile(unwell=True).unwell
    assert not (HoldAll(1).unwell or Reconcile().unwell or PauseHub().unwell)
    assert not Reject("x").unwell


def test_backoff_is_capped_and_never_below_half_the_base():
    """Full jitter in [base/2, min(cap, base * 2**(attempt-1))]."""
    rng = random.Random(5)
    delays = [backoff_delay_s(30, base_s=1.0, cap_s=300.0, rng=rng) for _ in range(200)]
    assert all(0.5 <= d <= 300.0 for d in delays)
    assert max(delays) > 150  # the cap, not the exponent, bounds attempt 30


# --- driven by the errors HubClient really raises ------------------------------------------


def _error_from(status: int, **headers: str) -> HubError:
    client = make_client(lambda r: json_response(status, {"message": f"m{status}"}, **headers))
    try:
        return call_and_catch(client, "POST")
    finally:
        client.close()


def _exception_error(cls: type[Exception]) -> HubError:
    def handler(request: httpx.Request):
        raise cls("boom", request=request)  # type: ignore[call-arg]

    client = make_client(handler)
    try:
        return call_and_catch(client, "POST")
    finally:
        client.close()


def test_next_step_for_each_client_error():
    """Errors the client raises drive the right step; max_attempts gives up on retryables."""
    rng = random.Random(3)
    auth, rejected = _error_from(401), _error_from(422)
    limited = _error_from(429, **{"Retry-After": "7"})
    limited_date = _error_from(429, **{"Retry-After": http_date(60)})
    limited_bare, server = _error_from(429), _error_from(503)
    ambiguous = _exception_error(httpx.ReadTimeout)
    transport = _exception_error(httpx.ConnectError)
    client = make_client(lambda r: json_response(202, {"id": 1}))
    try:
        response = call_and_catch(client, "POST")
    finally:
        client.close()

    def step(err: HubError, attempt: int = 1, **kw):
        return next_step(err, attempt=attempt, max_attempts=5, **kw)

    assert step(auth) == PauseHub()
    assert step(rejected) == Reject("m422")
    assert step(ambiguous) == Reconcile()
    assert step(response) == Reconcile()
    assert step(limited) == HoldAll(7.0)
    held = step(limited_date)
    assert isinstance(held, HoldAll) and 50 <= held.delay_s <= 60
    assert isinstance(step(limited_bare), HoldAll)
    assert step(server, 3) == Reconcile(unwell=True)
    retry = step(transport, 3, rng=rng)
    assert isinstance(retry, Retry) and 0.5 <= retry.delay_s <= 4.0
    assert isinstance(step(transport, 5), GiveUp)
    # Throttling, auth, rejection and ambiguity are not counted against max_attempts.
    assert step(limited, 9) == HoldAll(7.0)
    assert step(auth, 9) == PauseHub()
    assert step(ambiguous, 9) == Reconcile()
