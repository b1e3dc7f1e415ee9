"""next_step: the error policy, driven by the errors HubClient really raises."""

from __future__ import annotations

import random

import httpx

from tests.hub_helpers import (
    call_and_catch,
    http_date,
    json_response,
    make_client,
)
from watcher.hub.errors import HubError
from watcher.hub.policy import GiveUp, PauseHub, Reconcile, Reject, Retry, next_step


def error_from(status: int, **headers: str) -> HubError:
    client = make_client(lambda r: json_response(status, {"message": f"m{status}"}, **headers))
    try:
        return call_and_catch(client, "POST")
    finally:
        client.close()


def exception_error(cls: type[Exception]) -> HubError:
    def handler(request: httpx.Request):
        raise cls("boom", request=request)  # type: ignore[call-arg]

    client = make_client(handler)
    try:
        return call_and_catch(client, "POST")
    finally:
        client.close()


def test_next_step_for_each_client_error():
    """Errors the client raises drive the right next step; max_attempts gives up on retryables."""
    rng = random.Random(3)
    auth, rejected = error_from(401), error_from(422)
    limited, limited_date = (
        error_from(429, **{"Retry-After": "7"}),
        error_from(429, **{"Retry-After": http_date(60)}),
    )
    limited_bare, server = error_from(429), error_from(503)
    ambiguous = exception_error(httpx.ReadTimeout)
    transport = exception_error(httpx.ConnectError)
    client = make_client(lambda r: json_response(202, {"id": 1}))
    try:
        response = call_and_catch(client, "POST")
    finally:
        client.close()

    assert next_step(auth, 1, max_attempts=5) == PauseHub()
    assert next_step(rejected, 1, max_attempts=5) == Reject("m422")
    assert next_step(ambiguous, 1, max_attempts=5) == Reconcile()
    assert next_step(response, 1, max_attempts=5) == Reconcile()
    assert next_step(limited, 1, max_attempts=5) == Retry(7.0)
    step = next_step(limited_date, 1, max_attempts=5)
    assert isinstance(step, Retry) and 50 <= step.delay_s <= 60
    for err in (limited_bare, server, transport):
        step = next_step(err, 3, max_attempts=5, rng=rng)
        assert isinstance(step, Retry) and 0.5 <= step.delay_s <= 4.0, err
        assert isinstance(next_step(err, 5, max_attempts=5), GiveUp), err
    assert isinstance(next_step(limited, 5, max_attempts=5), GiveUp)
    # Auth, rejection and ambiguity are not counted against max_attempts.
    assert next_step(auth, 9, max_attempts=5) == PauseHub()
    assert next_step(ambiguous, 9, max_attempts=5) == Reconcile()
