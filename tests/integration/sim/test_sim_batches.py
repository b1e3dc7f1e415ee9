"""Batches (create, get, list, delete + job) and their files (PUT, list, delete)."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from tests.sim_helpers import AUTH, create_batch, raw_exchange, submit, validate, validate_ref


def test_create_get_and_list_a_batch(client, sim, spec_schemas):
    """POST /v2/batches answers 200 with an integer id; GET and the list answer batchInfo."""
    before_ms = time.time_ns() // 1_000_000
    resp = client.post("/v2/batches", json={"name": "invoices-2024", "workspace": "Finance"})
    assert resp.status_code == 200
    validate(spec_schemas["batch"], resp.json())
    batch_id = resp.json()["id"]
    info = client.get(f"/v2/batches/{batch_id}").json()
    validate(spec_schemas["batchInfo"], info)
    assert (info["id"], info["name"], info["workspace"]) == (batch_id, "invoices-2024", "Finance")
    assert before_ms <= info["created_at_ms"] <= time.time_ns() // 1_000_000
    other = create_batch(client, "personal")
    assert other != batch_id
    listed = client.get("/v2/batches").json()["batches"]
    for item in listed:
        validate(spec_schemas["batchInfo"], item)
    assert [b["id"] for b in listed] == [batch_id, other]
    only = client.get("/v2/batches", params={"workspace": "Finance"}).json()["batches"]
    assert [b["id"] for b in only] == [batch_id]
    page = client.get("/v2/batches", params={"limit": 1, "offset": 1}).json()["batches"]
    assert [b["id"] for b in page] == [other]
    assert [b["id"] for b in sim.batches] == [batch_id, other]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "name is required"),
        ({"name": ""}, "name is required"),
        ({"name": "x" * 256}, "255"),
        ({"name": 7}, "name must be a string"),
        ({"name": "ok", "workspace": 3}, "workspace must be a string"),
    ],
)
def test_invalid_batch_bodies_are_400(client, sim, spec_schemas, body, message):
    """A missing, empty or over-255-character name (or a non-string workspace) gets 400."""
    resp = client.post("/v2/batches", json=body)
    assert resp.status_code == 400
    validate(spec_schemas["error"], resp.json())
    assert message in resp.json()["message"]
    assert sim.batches == []


def test_name_of_exactly_255_characters_is_accepted(client):
    """The 255-character name limit is inclusive."""
    assert client.post("/v2/batches", json={"name": "n" * 255}).status_code == 200


def test_unknown_batch_is_404_and_bad_id_400(client, spec_schemas):
    """GET, DELETE and the file list of a batch that doesn't exist are 404; a non-integer id 400."""
    for resp in (
        client.get("/v2/batches/999999"),
        client.delete("/v2/batches/999999"),
        client.get("/v2/batches/999999/files"),
    ):
        assert resp.status_code == 404
        validate(spec_schemas["error"], resp.json())
    assert client.get("/v2/batches/abc").status_code == 400
    assert client.get("/v2/batches/" + "9" * 5000).status_code == 400


def test_delete_batch_answers_a_job_that_is_complete(client, sim, spec_schemas):
    """DELETE answers 202 with a job_id; polling it says COMPLETE and the batch is gone."""
    batch_id = create_batch(client)
    client.put(f"/v2/batches/{batch_id}/files/a.pdf", content=b"abc")
    resp = client.delete(f"/v2/batches/{batch_id}")
    assert resp.status_code == 202
    validate(spec_schemas["batchDeletionJobResponse"], resp.json())
    job = client.get(f"/v2/batches/jobs/{resp.json()['job_id']}")
    assert job.status_code == 200
    validate(spec_schemas["jobStatusResponse"], job.json())
    assert job.json()["state"] == "COMPLETE"
    assert client.get(f"/v2/batches/{batch_id}").status_code == 404
    assert client.get("/v2/batches/jobs/no-such-job").status_code == 404
    assert sim.batches == []


def test_put_file_stores_size_and_sha256_and_overwrites(client, sim):
    """PUT answers 204 with no body; a second PUT of the same name replaces the first."""
    batch_id = create_batch(client)
    resp = client.put(f"/v2/batches/{batch_id}/files/scan 1.pdf", content=b"first version")
    assert resp.status_code == 204
    assert resp.content == b"" and "content-length" not in resp.headers
    second = b"second, longer version"
    assert client.put(f"/v2/batches/{batch_id}/files/scan 1.pdf", content=second).status_code == 204
    (batch,) = sim.batches
    assert batch["files"] == {
        "scan 1.pdf": {"size": len(second), "sha256": hashlib.sha256(second).hexdigest()}
    }
    assert sim.requests[-1].body is None  # upload bytes never reach the request record


def test_empty_file_is_a_file(client, sim):
    """A zero-byte PUT stores a zero-byte file."""
    batch_id = create_batch(client)
    assert client.put(f"/v2/batches/{batch_id}/files/empty.txt", content=b"").status_code == 204
    assert sim.batches[0]["files"]["empty.txt"] == {
        "size": 0,
        "sha256": hashlib.sha256(b"").hexdigest(),
    }


def test_list_files_pages_with_a_token(client, spec_schemas):
    """The file list answers listBatchFilesResponse nodes by name, page_size at a time."""
    batch_id = create_batch(client)
    for name in ("c.pdf", "a.pdf", "b.pdf"):
        client.put(f"/v2/batches/{batch_id}/files/{name}", content=name.encode() * 10)
    first = client.get(f"/v2/batches/{batch_id}/files", params={"page_size": 2}).json()
    validate(spec_schemas["listBatchFilesResponse"], first)
    assert [n["name"] for n in first["nodes"]] == ["a.pdf", "b.pdf"]
    assert first["has_more"] is True
    assert first["nodes"][0]["metadata"]["size"] == 50
    assert first["nodes"][0]["full_path"].endswith(f"/{batch_id}/a.pdf")
    rest = client.get(
        f"/v2/batches/{batch_id}/files",
        params={"page_size": 2, "start_token": first["next_page_token"]},
    ).json()
    validate(spec_schemas["listBatchFilesResponse"], rest)
    assert [n["name"] for n in rest["nodes"]] == ["c.pdf"]
    assert rest["has_more"] is False and "next_page_token" not in rest
    bad = client.get(f"/v2/batches/{batch_id}/files", params={"start_token": "nonsense"})
    assert bad.status_code == 400


def test_delete_one_file(client, sim, spec_schemas):
    """DELETE of a file answers 202 with a job; the file is gone; an unknown file is 404."""
    batch_id = create_batch(client)
    client.put(f"/v2/batches/{batch_id}/files/a.pdf", content=b"a")
    client.put(f"/v2/batches/{batch_id}/files/b.pdf", content=b"b")
    resp = client.delete(f"/v2/batches/{batch_id}/files/a.pdf")
    assert resp.status_code == 202
    validate(spec_schemas["batchDeletionJobResponse"], resp.json())
    assert list(sim.batches[0]["files"]) == ["b.pdf"]
    assert client.delete(f"/v2/batches/{batch_id}/files/a.pdf").status_code == 404
    assert client.delete("/v2/batches/999999/files/b.pdf").status_code == 404


@pytest.mark.parametrize("name", ["%2E%2E", "%2E", "a%2Fb.pdf", "x" * 256 + ".pdf"])
def test_invalid_file_names_are_400(client, sim, name):
    """A file name must be one path segment of at most 255 characters."""
    batch_id = create_batch(client)
    resp = client.put(f"/v2/batches/{batch_id}/files/{name}", content=b"data")
    assert resp.status_code == 400
    assert sim.batches[0]["files"] == {}


def test_put_to_unknown_batch_is_404_and_the_client_carries_on(client, sim, spec_schemas):
    """A PUT to a batch that doesn't exist gets 404 (refused unread); the next request works."""
    resp = client.put("/v2/batches/999999/files/a.pdf", content=b"x" * 100_000)
    assert resp.status_code == 404
    validate(spec_schemas["error"], resp.json())
    assert create_batch(client)
    assert sim.requests[0].status == 404 and sim.requests[0].body is None


def test_put_over_the_single_put_limit_is_413_before_the_body(sim):
    """A PUT announcing more than max_put_bytes gets 413 without sending the body at all."""
    sim.options.max_put_bytes = 1000
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=10) as c:
        batch_id = create_batch(c)
    head = (
        f"PUT /api/v2/batches/{batch_id}/files/big.bin HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Length: 5000000000\r\n\r\n"
    )
    reply = raw_exchange(sim, head.encode())  # the body is never sent
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in reply and b"multipart" in reply
    assert sim.batches[0]["files"] == {}


def test_put_without_token_is_401_before_the_body(sim):
    """An unauthenticated PUT is refused before its body is read."""
    head = (
        "PUT /api/v2/batches/1001/files/a.bin HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 5000000000\r\n\r\n"
    )
    reply = raw_exchange(sim, head.encode())
    assert reply.startswith(b"HTTP/1.1 401 ")


def test_upload_fail_rate_answers_503_and_stores_nothing(client, sim, spec_schemas):
    """upload_fail_rate=1 makes every file PUT a 503 with nothing stored; 0 lets it through."""
    batch_id = create_batch(client)
    sim.options.upload_fail_rate = 1.0
    resp = client.put(f"/v2/batches/{batch_id}/files/a.pdf", content=b"abc")
    assert resp.status_code == 503
    validate(spec_schemas["error"], resp.json())
    assert sim.batches[0]["files"] == {}
    sim.options.upload_fail_rate = 0.0
    assert client.put(f"/v2/batches/{batch_id}/files/a.pdf", content=b"abc").status_code == 204


def test_run_with_a_batch_records_its_files_at_start(client, sim):
    """A run on a batch records the files (name, size, sha256) the batch held when it started."""
    batch_id = create_batch(client)
    client.put(f"/v2/batches/{batch_id}/files/b.pdf", content=b"bb")
    client.put(f"/v2/batches/{batch_id}/files/a.pdf", content=b"a")
    assert submit(client, batch_id=batch_id).status_code == 202
    client.put(f"/v2/batches/{batch_id}/files/late.pdf", content=b"too late")
    (run,) = sim.runs
    assert run["inputs"] == [
        {"path": "a.pdf", "size": 1, "sha256": hashlib.sha256(b"a").hexdigest()},
        {"path": "b.pdf", "size": 2, "sha256": hashlib.sha256(b"bb").hexdigest()},
    ]


def test_run_with_an_unknown_batch_is_404(client, sim, spec_schemas):
    """A run whose batch_id names no batch is refused with 404 and no run is created."""
    resp = submit(client, batch_id=999999)
    assert resp.status_code == 404
    validate(spec_schemas["error"], resp.json())
    assert sim.runs == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v2/batches"),
        ("POST", "/v2/batches/1001"),
        ("POST", "/v2/batches/1001/files"),
        ("GET", "/v2/batches/1001/files/a.pdf"),
        ("DELETE", "/v2/batches/jobs/j"),
        ("GET", "/v2/batches/multipart-upload"),
    ],
)
def test_wrong_methods_are_405(client, spec_schemas, method, path):
    """Known batch routes answer 405 to other methods."""
    resp = client.request(method, path)
    assert resp.status_code == 405
    validate_ref(spec_schemas, "error", resp.json())
