"""Helpers for the simulator's tests: the token they use, spec validation, requests, raw sockets."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_schema_validator import OAS30Validator

from watcher.sim import HubSim

TOKEN = "sim-token-9f3b2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def validate(schema: dict[str, Any], instance: Any) -> None:
    OAS30Validator(schema).validate(instance)


def validate_ref(schemas: dict[str, Any], name: str, instance: Any) -> None:
    """Validate against components/schemas/`name`, resolving its $refs to other schemas."""
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    OAS30Validator(root).validate(instance)


def submit(client: httpx.Client, deployment: str = "dep-1", **body: Any) -> httpx.Response:
    return client.post(f"/v2/apps/deployments/{deployment}/runs", json=body)


def list_runs(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/v2/apps/runs", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["runs"]


def create_batch(client: httpx.Client, name: str = "b", **body: Any) -> int:
    resp = client.post("/v2/batches", json={"name": name, **body})
    assert resp.status_code == 200, resp.text
    batch_id: int = resp.json()["id"]
    return batch_id


def start_session(client: httpx.Client, batch_id: int, filename: str, size: int) -> dict[str, Any]:
    resp = client.post(
        "/v2/batches/multipart-upload",
        json={"batch_id": batch_id, "filename": filename, "file_size": size},
    )
    assert resp.status_code == 201, resp.text
    session: dict[str, Any] = resp.json()
    return session


def put_part(client: httpx.Client, session_id: str, part_num: int, data: bytes) -> httpx.Response:
    return client.put(
        f"/v2/batches/multipart-upload/sessions/{session_id}/parts/{part_num}", content=data
    )


def multipart_upload(client: httpx.Client, batch_id: int, filename: str, data: bytes) -> int:
    """Upload `data` in the session's part_size parts and commit; the commit's status."""
    session = start_session(client, batch_id, filename, len(data))
    sid, size = session["session_id"], session["part_size"]
    parts = []
    for num, start in enumerate(range(0, len(data), size), start=1):
        resp = put_part(client, sid, num, data[start : start + size])
        assert resp.status_code == 201, resp.text
        parts.append({"part_num": num, "part_id": resp.json()["part_id"]})
    resp = client.post(
        f"/v2/batches/multipart-upload/sessions/{sid}", json={"action": "commit", "parts": parts}
    )
    return resp.status_code


def raw_exchange(sim: HubSim, data: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    parts = urlsplit(sim.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
