"""Run submission (POST .../runs): the 202 run, request validation, stored fields."""

from __future__ import annotations

import time

import pytest

from tests.sim_helpers import submit, validate


def test_submission_returns_202_spec_shaped_running_run(client, sim, spec_schemas):
    """A valid submission answers 202 with a spec `run`: uuid id, RUNNING, ns start, tags."""
    before_ns = time.time_ns()
    resp = submit(client, "dep-1", input_dir="org/ws/fs/Drive/in/a", settings={"tags": ["x", "y"]})
    assert resp.status_code == 202
    assert resp.headers["content-type"] == "application/json"
    run = resp.json()
    validate(spec_schemas["run"], run)
    assert run["status"] == "RUNNING"
    assert len(run["id"]) == 36 and run["id"].count("-") == 4
    assert before_ns <= run["start_timestamp"] <= time.time_ns()
    assert run["finish_timestamp"] is None and run["msg"] is None
    assert run["input_dir"] == "org/ws/fs/Drive/in/a"
    assert run["batch_id"] is None
    assert run["deployment_id"] == "dep-1"
    assert run["tags"] == ["x", "y"]
    assert run["app_id"]


def test_stored_run_keeps_output_dir_version_and_settings(client, sim):
    """The simulator keeps output_dir, version and settings on the stored run for assertions."""
    settings = {"tags": ["t1"], "keys": {"custom": {"k": "v"}}, "runtime_config": {}}
    batch_id = sim.add_batch()
    resp = submit(
        client, "dep-2", batch_id=batch_id, output_dir="org/out", version="1.2", settings=settings
    )
    assert resp.status_code == 202
    (stored,) = sim.runs
    assert stored["id"] == resp.json()["id"]
    assert stored["batch_id"] == batch_id and stored["input_dir"] is None
    assert stored["output_dir"] == "org/out"
    assert stored["version"] == "1.2"
    assert stored["settings"] == settings


def test_app_id_is_stable_per_deployment(client):
    """Runs of one deployment share an app_id; another deployment gets a different one."""
    a1 = submit(client, "dep-a", input_dir="x").json()["app_id"]
    a2 = submit(client, "dep-a", input_dir="y").json()["app_id"]
    b = submit(client, "dep-b", input_dir="z").json()["app_id"]
    assert a1 == a2 != b


def test_no_tags_gives_empty_list(client):
    """Without settings.tags the run's tags are []."""
    assert submit(client, input_dir="x").json()["tags"] == []


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"output_dir": "o"}',
        b'{"input_dir": ""}',
        b"[]",
        b'"input_dir"',
        b"not json",
        b"",
        b'{"input_dir": 5}',
        b'{"input_dir": null}',
        b'{"batch_id": "12"}',
        b'{"batch_id": true}',
        b'{"input_dir": "x", "version": 3}',
        b'{"input_dir": "x", "settings": []}',
        b'{"input_dir": "x", "settings": {"tags": "a"}}',
        b'{"input_dir": "x", "settings": {"tags": [1]}}',
        b'{"input_dir": "x", "settings": {"keys": {"secret": {"a": 1}}}}',
        (
            '{"input_dir": "x", "settings": {"tags": ["' + "a" * 300 + '", "' + "b" * 201 + '"]}}'
        ).encode(),
    ],
)
def test_invalid_submission_is_400_with_message(client, sim, spec_schemas, body):
    """Bodies violating the request schema (or with neither input_dir nor batch_id) get 400."""
    resp = client.post(
        "/v2/apps/deployments/dep-1/runs",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    validate(spec_schemas["error"], resp.json())
    assert resp.json()["message"]
    assert sim.runs == []


def test_tags_at_exactly_500_chars_are_accepted(client):
    """The 500-character tag limit is inclusive."""
    resp = submit(client, input_dir="x", settings={"tags": ["a" * 250, "b" * 250]})
    assert resp.status_code == 202


def test_batch_id_alone_is_enough(client, sim):
    """batch_id (of an existing batch) without input_dir is a valid submission."""
    batch_id = sim.add_batch()
    resp = submit(client, batch_id=batch_id)
    assert resp.status_code == 202
    assert resp.json()["batch_id"] == batch_id
