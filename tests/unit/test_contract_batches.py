"""Batch, upload and run-results requests checked against the vendor's OpenAPI spec and the
official SDK's pydantic models (`instabase-aihub`); spec-valid answers, the spec's own results
examples included, parse. Without ../shared/ the spec checks skip (fail under CI=true)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aihub.models.batch import Batch as SdkBatch
from aihub.models.commit_multipart_upload_session_request import (
    CommitMultipartUploadSessionRequest,
)
from aihub.models.create_batch_request import CreateBatchRequest
from aihub.models.create_multipart_upload_session_request import (
    CreateMultipartUploadSessionRequest,
)
from aihub.models.multipart_upload_session_response import MultipartUploadSessionResponse
from aihub.models.results_response import ResultsResponse
from openapi_schema_validator import OAS30Validator
from pydantic import BaseModel, ValidationError

from tests.conftest import load_openapi_spec
from tests.unit.contract_helpers import assert_valid, resolve, spec_operation
from watcher.hub.client import HubClient
from watcher.hub.models import (
    Batch,
    MultipartSession,
    build_batch_request,
    build_commit_request,
    build_multipart_request,
)

SESSION = "yGLRzUtS2vHm9IdxMrsKaMEOXG7hGBU7KEuvm2JujgBuO9ZAwtqTYmAYauf1RHI8bgEq7qm_UnCE5YNd"
CREATE, MULTIPART = "/v2/batches", "/v2/batches/multipart-upload"
SESSION_T = "/v2/batches/multipart-upload/sessions/{session_id}"

# (operation path template, SDK request model, body) for every JSON body the client can build.
BODIES: dict[str, tuple[str, type[BaseModel], dict[str, Any]]] = {
    "batch": (CREATE, CreateBatchRequest, build_batch_request(name="invoices: drop 1")),
    "batch in a workspace": (
        CREATE,
        CreateBatchRequest,
        build_batch_request(name="scans ü #2", workspace="Finance"),
    ),
    "multipart session": (
        MULTIPART,
        CreateMultipartUploadSessionRequest,
        build_multipart_request(batch_id=12345, filename="a b.pdf", file_size=2 * 1024**3),
    ),
    "commit": (
        SESSION_T,
        CommitMultipartUploadSessionRequest,
        build_commit_request([(1, "12345"), (2, "12346"), (3, "12347")]),
    ),
    "abort": (SESSION_T, CommitMultipartUploadSessionRequest, {"action": "abort"}),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_openapi_spec()


def request_schema(spec: dict[str, Any], template: str) -> dict[str, Any]:
    op = spec["paths"][template]["post"]
    schema: dict[str, Any] = resolve(
        op["requestBody"]["content"]["application/json"]["schema"], spec
    )
    return schema


def assert_sdk_valid(model: type[BaseModel], body: dict[str, Any]) -> None:
    """`body` validates strictly against the SDK model, which keeps every key (pydantic drops
    unknown keys, so a dropped key is a misspelt one)."""
    parsed = model.model_validate(copy.deepcopy(body), strict=True)
    assert parsed.model_dump(exclude_unset=True) == body, "the SDK model dropped or changed a key"


@pytest.mark.parametrize("name", list(BODIES))
def test_bodies_validate_against_the_spec(spec, name):
    """Every batch/multipart body the client builds validates against its operation's request
    schema (also with undeclared keys forbidden)."""
    template, _, body = BODIES[name]
    assert_valid(request_schema(spec, template), json.loads(json.dumps(body)))


@pytest.mark.parametrize("name", list(BODIES))
def test_bodies_validate_against_the_sdk_models(name):
    """Every batch/multipart body is a valid request of the official SDK's pydantic model."""
    _, model, body = BODIES[name]
    assert_sdk_valid(model, json.loads(json.dumps(body)))


def test_the_checks_can_fail(spec):
    """Sanity: the spec and SDK checks reject wrong types, missing and misspelt keys."""
    bad = {
        CREATE: (CreateBatchRequest, [{}, {"name": 5}, {"name": "n", "workspce": "w"}]),
        MULTIPART: (
            CreateMultipartUploadSessionRequest,
            [{"batch_id": "7", "filename": "a", "file_size": 1}, {"batch_id": 7, "filename": "a"}],
        ),
        SESSION_T: (
            CommitMultipartUploadSessionRequest,
            [{"action": "done"}, {"action": "commit", "parts": [{"part_num": 1, "part_id": 2}]}],
        ),
    }
    for template, (model, bodies) in bad.items():
        for body in bodies:
            with pytest.raises(AssertionError):
                assert_valid(request_schema(spec, template), body)
            with pytest.raises((AssertionError, ValidationError)):
                assert_sdk_valid(model, body)


def answer_for(request: httpx.Request) -> httpx.Response:
    """A spec-valid answer to each batch or results request."""
    path = request.url.path.removeprefix("/api")
    if request.method == "POST" and path == CREATE:
        return httpx.Response(200, json={"id": 12345})
    if request.method == "POST" and path == MULTIPART:
        return httpx.Response(201, json={"session_id": SESSION, "part_size": 10485760})
    if "/parts/" in path:
        return httpx.Response(201, json={"part_id": "p-1", "part_num": 1})
    if request.method == "DELETE":
        return httpx.Response(202, json={"job_id": "a1b2c3d4"})
    if request.method == "GET" and path.endswith("/results"):
        return httpx.Response(200, json={"id": "r-1", "status": "COMPLETE", "has_more": False})
    if request.method == "GET":
        return httpx.Response(200, json={"id": 12345, "name": "b"})
    return httpx.Response(204 if request.method == "PUT" else 201)


@pytest.fixture
def sent(tmp_path: Path) -> Iterator[list[httpx.Request]]:
    """Every new operation, sent once with IB-Context; the requests as the server saw them."""
    seen: list[httpx.Request] = []
    data = tmp_path / "a b.pdf"
    data.write_bytes(b"%PDF" * 10)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer_for(request)

    with HubClient(
        base_url="https://hub.example/api",
        token="t",
        context="acme",
        transport=httpx.MockTransport(handler),
    ) as client:
        b = client.batches
        b.create_batch(name="n", workspace="w")
        b.get_batch(12345)
        b.upload_file(batch_id=12345, filename="a b.pdf", path=data, size=40)
        session = b.start_multipart(batch_id=12345, filename="a b.pdf", file_size=40)
        b.upload_part(session_id=session.session_id, part_num=1, path=data, offset=0, length=40)
        b.commit_multipart(session_id=session.session_id, parts=[(1, "p-1")])
        b.abort_multipart(session_id=session.session_id)
        b.delete_batch(12345)
        client.fetch_run_results(
            "r-1",
            options={
                "include_review_results": True,
                "include_confidence_scores": False,
                "include_validation_results": True,
                "include_source_info": True,
            },
        )
    yield seen


def check_param(spec_param: dict[str, Any], value: str) -> None:
    """A path or query value as sent fits its parameter's declared type."""
    schema = spec_param["schema"]
    if schema.get("type") == "integer":
        int(value)
    elif schema.get("type") == "boolean":
        assert value in ("true", "false"), (spec_param["name"], value)


def test_every_request_is_a_declared_operation(spec, sent):
    """Each request hits a (path, method) the spec declares, with the Content-Type its request
    body declares, integer path ids, and only declared query params of the declared types."""
    assert len(sent) == 9
    for req in sent:
        rel = req.url.path.removeprefix("/api")
        template, op = spec_operation(spec, req.method, rel)
        params = {p["name"]: p for p in (resolve(x, spec) for x in op.get("parameters", []))}
        assert req.headers["ib-context"] == "acme" and "IB-Context" in params
        for t, value in zip(template.split("/"), rel.split("/"), strict=True):
            if t.startswith("{"):
                check_param(params[t.strip("{}")], value)
        if "requestBody" in op:
            assert req.headers["content-type"] in op["requestBody"]["content"], template
        else:
            assert req.content == b"" and "content-type" not in req.headers, template
        for name, value in req.url.params.multi_items():
            assert name in params and params[name]["in"] == "query", (template, name)
            check_param(params[name], value)


def response_schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = resolve(spec["components"]["schemas"][name], spec)
    return schema


def assert_response_valid(schema: dict[str, Any], instance: Any) -> None:
    """Responses are checked against the open schema: servers may add fields."""
    errors = sorted(OAS30Validator(schema).iter_errors(instance), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_spec_valid_answers_parse(spec):
    """Spec-valid batch, batchInfo and multipart-session answers become the right types."""
    created = {"id": 12345}
    info = {
        "id": 12345,
        "name": "MyBatch",
        "workspace": "MyWorkspace",
        "mount_point": "Instabase Drive",
        "repo_owner": "acme",
        "batch_owner": "john.doe_acme.com",
        "created_at_ms": 1_700_000_000_000,
        "updated_at_ms": 1_700_000_000_500,
        "path_suffix": "batches/12345",
    }
    props = response_schema(spec, "multipartUploadSessionResponse")["properties"]
    session = {k: props[k]["example"] for k in ("session_id", "part_size")}
    for name, body in (
        ("batch", created),
        ("batchInfo", info),
        ("multipartUploadSessionResponse", session),
    ):
        assert_response_valid(response_schema(spec, name), body)
    b = Batch.from_json(created, method="POST", path=CREATE, name="MyBatch")
    assert (b.id, b.name, b.workspace) == (12345, "MyBatch", None)
    b = Batch.from_json(info, method="GET", path="/v2/batches/12345")
    assert (b.id, b.name, b.workspace) == (12345, "MyBatch", "MyWorkspace")
    assert {**b.extra, "id": b.id, "name": b.name, "workspace": b.workspace} == info
    s = MultipartSession.from_json(session, method="POST", path=MULTIPART)
    assert (s.session_id, s.part_size) == (session["session_id"], 10485760)
    assert SdkBatch.model_validate(created, strict=True).id == 12345
    assert MultipartUploadSessionResponse.model_validate(session, strict=True).part_size == 10485760


def test_types_cover_the_sdk_response_models():
    """Batch has every field of the SDK's Batch; MultipartSession exactly the SDK session's."""
    assert set(SdkBatch.model_fields) <= {f.name for f in dataclasses.fields(Batch)}
    assert set(MultipartUploadSessionResponse.model_fields) == {
        f.name for f in dataclasses.fields(MultipartSession)
    }


def test_the_specs_results_examples_merge_into_a_valid_results_response(spec):
    """The spec's getRunResults examples, served as two pages, merge into one body that is
    still a valid resultsResponse for the spec and for the SDK, with the files in order."""
    op = spec["paths"]["/v2/apps/runs/{run_id}/results"]["get"]
    examples = [copy.deepcopy(e["response"]["body"]) for e in op["x-fern-examples"]]
    assert len(examples) >= 2
    schema = response_schema(spec, "resultsResponse")
    first, second = examples[0], examples[1]
    first["has_more"] = True
    # The spec's first example sends `keys` as a list; its schema says object. The client passes
    # top-level fields through untouched, so only a schema-valid page can show validity is kept.
    if isinstance(first.get("keys"), list):
        first["keys"] = first["keys"][0]
    for body in (first, second):
        assert_response_valid(schema, body)
    pages = {0: first, len(first["files"]): second}
    with HubClient(
        base_url="https://hub.example/api",
        token="t",
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, json=pages[int(r.url.params["file_offset"])])
        ),
    ) as client:
        merged = client.fetch_run_results("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
    assert merged["files"] == first["files"] + second["files"]
    assert merged["has_more"] is False
    assert {k: v for k, v in merged.items() if k not in ("files", "has_more")} == {
        k: v for k, v in first.items() if k not in ("files", "has_more")
    }
    assert_response_valid(schema, merged)
    sdk = ResultsResponse.model_validate(merged, strict=True)
    assert sdk.files is not None and len(sdk.files) == len(merged["files"])
