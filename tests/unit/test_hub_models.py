"""The hub's request and result types: the runDeployment body as sent, Run from responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import MappingProxyType

import httpx
import pytest

from tests.hub_helpers import (
    RUN_BODY,
    ClientFactory,
    json_response,
)
from watcher.hub.errors import HubResponseError
from watcher.hub.models import Run


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


def test_run_keeps_unknown_fields_and_accepts_int64_strings(client_factory):
    """Unknown response fields land in Run.extra (read-only); int64 sent as strings are ints."""
    body = {
        **RUN_BODY,
        "start_timestamp": "1700000000000000000",
        "output_workspace": "ws",
        "nested": {"a": [1, 2]},
    }
    client = client_factory(lambda r: json_response(200, body))
    run = client.get_run("r-1")
    assert run.start_timestamp == 1_700_000_000_000_000_000
    assert run.tags == ("t1",)
    assert dict(run.extra) == {"output_workspace": "ws", "nested": {"a": [1, 2]}}
    with pytest.raises(TypeError):
        run.extra["x"] = 1
    assert run.log_fields() == {
        "id": "r-1",
        "status": "RUNNING",
        "start_timestamp": 1_700_000_000_000_000_000,
        "input_dir": "acme/ws/fs/Drive/in/a",
        "app_id": "app-1",
        "deployment_id": "dep-1",
        "tags": ["t1"],
    }
    json.dumps(run.log_fields())  # the pipeline stores it as JSON text


def test_run_from_json_direct():
    """Run.from_json builds from a dict and names method/path in its error."""
    run = Run.from_json(RUN_BODY, method="GET", path="/v2/apps/runs/r-1")
    assert run.deployment_id == "dep-1" and run.extra == {}
    with pytest.raises(HubResponseError) as info:
        Run.from_json(None, method="GET", path="/v2/apps/runs/x")
    assert str(info.value).startswith("GET /v2/apps/runs/x: response is not a run")


def test_list_without_runs_key_is_empty(client_factory):
    """A listing that omits `runs` (or sends null) is an empty page, not an error."""
    for body in ({}, {"runs": None}):
        client = client_factory(lambda r, body=body: json_response(200, body))
        assert client.list_runs() == []


def test_post_sends_json(client_factory):
    """run_deployment POSTs a compact JSON body with a JSON content type to the deployment path."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request):
        seen.append(request)
        return json_response(202, RUN_BODY)

    run = client_factory(handler).run_deployment(
        deployment_id="dep 1/x",
        input_dir="acme/ws/fs/Drive/in/ä",
        settings=MappingProxyType({"tags": ("a", "b"), "keys": MappingProxyType({"custom": {}})}),
    )
    assert run.id == "r-1"
    (req,) = seen
    assert req.method == "POST"
    assert req.url.raw_path == b"/api/v2/apps/deployments/dep%201%2Fx/runs"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {
        "input_dir": "acme/ws/fs/Drive/in/ä",
        "settings": {"tags": ["a", "b"], "keys": {"custom": {}}},
    }
