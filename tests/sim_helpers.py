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


def submit(client: httpx.Client, deployment: str = "dep-1", **body: Any) -> httpx.Response:
    return client.post(f"/v2/apps/deployments/{deployment}/runs", json=body)


def list_runs(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/v2/apps/runs", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["runs"]


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
