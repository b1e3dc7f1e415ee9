"""Request bodies, query params and the Run type, checked against the vendor's OpenAPI spec and
against the pydantic models of the vendor's official SDK (`instabase-aihub`).

The spec lives outside the repository (../shared/): without it those tests skip, or fail under
CI=true. The SDK is a test dependency, so its checks run on every clone.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from aihub.models.run import Run as SdkRun
from aihub.models.run_deployment_request import RunDeploymentRequest
from aihub.models.run_deployment_request_settings import RunDeploymentRequestSettings
from pydantic import StrictStr, TypeAdapter, ValidationError

from tests.conftest import load_openapi_spec
from tests.unit.contract_helpers import assert_valid, path_template_matches, resolve
from watcher.hub.client import HubClient
from watcher.hub.models import Run, build_run_request

RUN_DEPLOYMENT = "/v2/apps/deployments/{deployment-id}/runs"

# Bodies the client can build: input_dir only, batch_id, and every optional field.
BODIES: dict[str, dict[str, Any]] = {
    "input_dir only": {"input_dir": "acme/ws/fs/Instabase Drive/in/drop 1"},
    "batch_id only": {"batch_id": 12345},
    "everything": {
        "input_dir": "acme/ws/fs/Drive/in/ä #1",
        "output_dir": "acme/ws/fs/Drive/out/2025",
        "version": "1.2.0",
        "settings": {
            "keys": {
                "custom": {"region": "eu", "threshold": 0.7, "nested": {"a": [1, "b"]}},
                "secret": {"api_key": "vault-key-name"},
            },
            "runtime_config": {
                "generate_post_process_pdf": True,
                "instabase": {"pdf": {"passwords": {"locked.pdf": "pw"}}},
            },
            "tags": ["rule:invoices", "aihub-watcher:drop=d-0123456789ab"],
        },
    },
    "read-only settings (a Rule's)": {
        "input_dir": "acme/ws/fs/Drive/in/b",
        "settings": MappingProxyType(
            {
                "tags": ("x", "y"),
                "keys": MappingProxyType({"custom": MappingProxyType({"k": ("v",)})}),
            }
        ),
    },
    "batch_id with settings": {"batch_id": 7, "settings": {"tags": []}},
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_openapi_spec()


@pytest.fixture(scope="module")
def request_schema(spec: dict[str, Any]) -> dict[str, Any]:
    op = spec["paths"][RUN_DEPLOYMENT]["post"]
    schema: dict[str, Any] = resolve(
        op["requestBody"]["content"]["application/json"]["schema"], spec
    )
    return schema


@pytest.fixture(scope="module")
def run_schema(spec: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = resolve(spec["components"]["schemas"]["run"], spec)
    return schema


@pytest.mark.parametrize("name", list(BODIES))
def test_built_bodies_validate_against_run_deployment_schema(request_schema, name):
    """Every body build_run_request makes validates against the runDeployment request schema."""
    body = build_run_request(**BODIES[name])
    assert_valid(request_schema, json.loads(json.dumps(body)))


def test_the_checks_can_fail(request_schema, run_schema):
    """Sanity: the validators reject wrong types and (closed) misspelt keys."""
    for bad in (
        {"input_dir": 5},
        {"batch_id": "7"},
        {"inputdir": "x"},
        {"settings": {"tags": [1]}},
        {"settings": {"keys": {"secret": {"k": 1}}}},
    ):
        with pytest.raises(AssertionError):
            assert_valid(request_schema, bad)
    with pytest.raises(AssertionError):
        assert_valid(run_schema, {"id": "r", "status": "DONE"})


@pytest.fixture
def captured() -> Iterator[tuple[HubClient, list[httpx.Request]]]:
    seen: list[httpx.Request] = []
    run = {"id": "r-1", "status": "RUNNING"}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(202, json=run)
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.url.path.endswith("/runs"):
            return httpx.Response(200, json={"runs": [run]})
        return httpx.Response(200, json=run)

    client = HubClient(
        base_url="https://hub.example/api",
        token="t",
        context="acme",
        transport=httpx.MockTransport(handler),
    )
    yield client, seen
    client.close()


def sent_bodies(client: HubClient, seen: list[httpx.Request]) -> list[Any]:
    """POST every body shape through the client; the JSON it sent, each as build_run_request
    built it."""
    for fields in BODIES.values():
        client.run_deployment(deployment_id="dep-1", **fields)
    assert len(seen) == len(BODIES)
    sent = []
    for req, fields in zip(seen, BODIES.values(), strict=True):
        assert req.headers["content-type"] == "application/json"
        body = json.loads(req.content)
        assert body == json.loads(json.dumps(build_run_request(**fields)))
        sent.append(body)
    return sent


def test_bodies_sent_by_the_client_validate(request_schema, captured):
    """The JSON HubClient actually POSTs validates too, for every body shape."""
    for body in sent_bodies(*captured):
        assert_valid(request_schema, body)


def test_body_without_input_is_still_schema_valid(request_schema):
    """No input_dir/batch_id is schema-valid (the spec says so in prose): the server decides."""
    assert build_run_request() == {}
    assert_valid(request_schema, build_run_request())


def test_paths_methods_and_query_params_are_in_the_spec(spec, captured):
    """Each request hits a (path, method) the spec declares, with only declared query params and
    enum values."""
    client, seen = captured
    client.run_deployment(deployment_id="dep-1", input_dir="a/b")
    client.get_run("r-1")
    client.list_runs(
        deployment_id="dep-1",
        status=["RUNNING", "COMPLETE"],
        from_timestamp=1_700_000_000,
        to_timestamp=1_700_000_100,
        limit=10,
        offset=0,
        sort_by="status",
        order="ASCENDING",
    )
    list(client.iter_runs(page_size=5, deployment_id="dep-1"))
    client.file_metadata("acme/ws/fs/Drive/a b/c.pdf")
    for req in seen:
        rel = req.url.path.removeprefix("/api")
        matches = [t for t in spec["paths"] if path_template_matches(t, rel)]
        assert matches, f"no spec path for {rel}"
        op = spec["paths"][matches[0]].get(req.method.lower())
        assert op is not None, f"{req.method} {matches[0]} not in spec"
        params = {p["name"]: p for p in (resolve(x, spec) for x in op.get("parameters", []))}
        assert req.headers["ib-context"] == "acme" and "IB-Context" in params
        for name, value in req.url.params.multi_items():
            assert name in params and params[name]["in"] == "query", name
            schema = params[name]["schema"]
            if schema.get("type") == "array":
                schema = schema["items"]
            if schema.get("type") == "integer":
                int(value)
            if "enum" in schema:
                assert value in schema["enum"], (name, value)


def test_run_dataclass_matches_the_run_schema(run_schema):
    """Every property of the spec's `run` is a Run field; what a Run logs and stores is a valid
    run."""
    fields = {f.name for f in dataclasses.fields(Run)} - {"extra"}
    assert set(run_schema["properties"]) == fields

    fixture = {
        "id": "0190-run",
        "status": "COMPLETE",
        "start_timestamp": 1_700_000_000_000_000_000,
        "finish_timestamp": 1_700_000_060_000_000_000,
        "msg": None,
        "batch_id": 42,
        "input_dir": "acme/ws/fs/Drive/in/a",
        "app_id": "app-1",
        "deployment_id": "dep-1",
        "tags": ["x"],
        "vendor_extension": {"k": 1},
    }
    assert_valid(run_schema, {k: v for k, v in fixture.items() if k != "vendor_extension"})
    run = Run.from_json(fixture, method="GET", path="/v2/apps/runs/0190-run")
    assert run.extra == {"vendor_extension": {"k": 1}}
    known = {k: v for k, v in fixture.items() if v is not None and k != "vendor_extension"}
    assert run.log_fields() == known
    assert_valid(run_schema, run.log_fields())
    minimal = Run.from_json({"id": "r", "status": "RUNNING"}, method="GET", path="/x")
    assert minimal.log_fields() == {"id": "r", "status": "RUNNING"}
    assert_valid(run_schema, minimal.log_fields())
    for status in run_schema["properties"]["status"]["enum"]:
        assert (
            Run.from_json({"id": "r", "status": status}, method="GET", path="/x").status == status
        )


def test_error_schema_message_field(spec):
    """The client reads `message` from error bodies: that is the spec error schema's field."""
    assert "message" in spec["components"]["schemas"]["error"]["properties"]


# --- the official SDK's pydantic models: no ../shared/ needed ----------------------------------

# Settings the spec declares but instabase-aihub 0.14.0's model lacks (it has no settings.tags),
# each with the spec's type. Checked here while the SDK lacks them, by the SDK once it has them.
SPEC_ONLY_SETTINGS: dict[str, TypeAdapter[Any]] = {"tags": TypeAdapter(list[StrictStr])}


def assert_sdk_valid(body: dict[str, Any]) -> None:
    """`body` validates strictly against the SDK's RunDeploymentRequest and the model keeps every
    key: pydantic ignores unknown keys, so a key the model dropped is a misspelt or unknown one."""
    body = copy.deepcopy(body)
    settings = body.get("settings")
    if isinstance(settings, dict):
        for name, adapter in SPEC_ONLY_SETTINGS.items():
            if name in settings and name not in RunDeploymentRequestSettings.model_fields:
                adapter.validate_python(settings.pop(name), strict=True)
    model = RunDeploymentRequest.model_validate(body, strict=True)
    assert model.model_dump(exclude_unset=True) == body, "the SDK model dropped or changed a key"


@pytest.mark.parametrize("name", list(BODIES))
def test_built_bodies_validate_against_the_sdk_request_model(name):
    """Every body build_run_request makes is a valid RunDeploymentRequest of the official SDK."""
    assert_sdk_valid(json.loads(json.dumps(build_run_request(**BODIES[name]))))


def test_bodies_sent_by_the_client_validate_against_the_sdk(captured):
    """The JSON HubClient actually POSTs is a valid SDK RunDeploymentRequest, for every shape."""
    for body in sent_bodies(*captured):
        assert_sdk_valid(body)
    assert_sdk_valid(build_run_request())  # no input: valid; the server's 400 decides


def test_the_sdk_check_can_fail():
    """Sanity: the SDK check rejects wrong types, misspelt keys and a wrong tags type."""
    for bad in (
        {"input_dir": 5},
        {"batch_id": "7"},
        {"batch_id": True},
        {"inputdir": "x"},
        {"settings": {"tag": ["x"]}},
        {"settings": {"tags": [1]}},
        {"settings": {"tags": "x"}},
        {"settings": {"keys": {"secret": {"k": 1}}}},
        {"settings": {"runtime_config": {"generate_post_process_pdf": "yes"}}},
    ):
        with pytest.raises((AssertionError, ValidationError)):
            assert_sdk_valid(bad)


def test_every_field_of_the_sdk_run_is_a_run_field():
    """The SDK's Run (a subset of the spec's) has no field our Run lacks, and an SDK-valid run
    body parses into our Run with the same values."""
    fields = {f.name for f in dataclasses.fields(Run)} - {"extra"}
    assert set(SdkRun.model_fields) <= fields
    body = {
        "id": "0190-run",
        "status": "COMPLETE",
        "start_timestamp": 1_700_000_000_000_000_000,
        "finish_timestamp": 1_700_000_060_000_000_000,
        "msg": "done",
    }
    sdk_run = SdkRun.model_validate(body, strict=True)
    run = Run.from_json(body, method="GET", path="/v2/apps/runs/0190-run")
    assert {name: getattr(run, name) for name in SdkRun.model_fields} == sdk_run.model_dump()
