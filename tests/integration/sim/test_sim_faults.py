"""Fault injection: 503s, seeded replay, 429 + Retry-After, lost responses, latency."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import wait_until
from tests.sim_helpers import AUTH, TOKEN, list_runs, submit, validate
from watcher.sim import SimOptions, serve_in_thread


def test_fail_rate_one_gives_503_and_creates_nothing(client, sim, spec_schemas):
    """fail_rate=1 answers every submission 503 with a JSON error and creates no run."""
    sim.options.fail_rate = 1.0
    resp = submit(client, input_dir="x")
    assert resp.status_code == 503
    validate(spec_schemas["error"], resp.json())
    assert sim.runs == []
    assert client.get("/v2/apps/runs").status_code == 200  # reads are not failed
    sim.options.fail_rate = 0.0
    assert submit(client, input_dir="x").status_code == 202


def test_same_seed_gives_same_fault_sequence():
    """Fault decisions come from random.Random(seed), so a seed replays the same statuses."""
    sequences = []
    for _ in range(2):
        with (
            serve_in_thread(SimOptions(token=TOKEN, seed=123, fail_rate=0.5)) as s,
            httpx.Client(base_url=s.url, headers=AUTH, timeout=10) as c,
        ):
            sequences.append([submit(c, input_dir="x").status_code for _ in range(20)])
    assert sequences[0] == sequences[1]
    assert set(sequences[0]) == {202, 503}


def test_rate_limit_answers_429_with_retry_after(client, sim, spec_schemas):
    """Past rate_limit submissions per second the answer is 429 with an integer Retry-After >= 1."""
    sim.options.rate_limit = 2
    responses = [submit(client, input_dir=f"d{i}") for i in range(6)]
    statuses = [r.status_code for r in responses]
    assert statuses[:2] == [202, 202]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, statuses
    for resp in limited:
        assert int(resp.headers["retry-after"]) >= 1
        validate(spec_schemas["error"], resp.json())
    assert len(sim.runs) == statuses.count(202)
    sim.options.rate_limit = None
    assert submit(client, input_dir="after").status_code == 202


def test_rate_limit_refills_over_time(client, sim):
    """After waiting out Retry-After the limiter lets submissions through again."""
    sim.options.rate_limit = 20
    statuses = [submit(client, input_dir=f"d{i}").status_code for i in range(40)]
    assert 429 in statuses
    assert wait_until(
        lambda: submit(client, input_dir="later").status_code == 202, timeout=5, what="refill"
    )


def test_lost_response_disconnects_but_run_exists(client, sim):
    """lose_response_rate=1 creates the run, then closes the connection without an answer."""
    sim.options.lose_response_rate = 1.0
    with pytest.raises(httpx.RemoteProtocolError):
        submit(client, "dep-lost", input_dir="org/lost")
    sim.options.lose_response_rate = 0.0
    runs = list_runs(client, deployment_id="dep-lost")
    assert [r["input_dir"] for r in runs] == ["org/lost"]
    assert len(sim.runs) == 1
    lost = [r for r in sim.requests if r.method == "POST"]
    assert [r.status for r in lost] == [0]


def test_latency_delays_every_answer(client, sim):
    """latency_ms delays the answer to any request, reads included."""
    sim.options.latency_ms = 150
    started = time.perf_counter()
    assert client.get("/v2/apps/runs").status_code == 200
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    assert submit(client, input_dir="x").status_code == 202
    assert time.perf_counter() - started >= 0.15


def test_gateway_error_rate_creates_the_run_then_answers_502(client, sim, spec_schemas):
    """gateway_error_rate=1: the run exists, yet the answer is a 502 JSON error."""
    sim.options.gateway_error_rate = 1.0
    resp = submit(client, input_dir="acme/in/b1")
    assert resp.status_code == 502
    validate(spec_schemas["error"], resp.json())
    (run,) = sim.runs
    assert run["input_dir"] == "acme/in/b1"


def test_forbid_runs_refuses_submissions_but_not_reads(client, sim, spec_schemas):
    """forbid_runs: 403 on run submission, while listing runs still works."""
    sim.options.forbid_runs = True
    resp = submit(client, input_dir="x")
    assert resp.status_code == 403
    validate(spec_schemas["error"], resp.json())
    assert client.get("/v2/apps/runs").status_code == 200
    assert sim.runs == []
