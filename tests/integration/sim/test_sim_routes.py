"""Auth and routing: the Bearer token on every endpoint, unknown routes and methods."""

from __future__ import annotations

import httpx
import pytest

from tests.sim_helpers import AUTH, TOKEN, validate


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-value-123"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "basic-scheme", "empty"],
)
def test_bad_or_missing_token_is_401_without_echo(sim, spec_schemas, headers):
    """Every endpoint demands the Bearer token; the 401 body never echoes what was presented."""
    with httpx.Client(base_url=sim.url, headers=headers, timeout=10) as c:
        for resp in (
            c.post("/v2/apps/deployments/d/runs", json={"input_dir": "x"}),
            c.get("/v2/apps/runs"),
            c.get("/v2/apps/runs/abc"),
            c.get("/v2/apps/runs/abc/results"),
            c.post("/v2/batches", json={"name": "b"}),
            c.get("/v2/batches/1001"),
            c.put("/v2/batches/1001/files/a.pdf", content=b"data"),
            c.post("/v2/batches/multipart-upload", json={}),
        ):
            assert resp.status_code == 401
            validate(spec_schemas["error"], resp.json())
            assert "wrong-token-value-123" not in resp.text and TOKEN not in resp.text
        assert c.head("/v2/files/a").status_code == 401
    assert sim.runs == [] and sim.batches == []
    assert all(r.status == 401 for r in sim.requests)


def test_bearer_scheme_is_case_insensitive(sim):
    """`bearer <token>` is accepted like `Bearer <token>`."""
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        resp = c.get("/v2/apps/runs", headers={"Authorization": f"bearer {TOKEN}"})
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/nothing", 404),
        ("GET", "/v2/apps/runs/abc/results", 404),
        ("GET", "/v2/apps/deployments/d/runs", 405),
        ("DELETE", "/v2/apps/runs/abc", 405),
        ("POST", "/v2/apps/runs", 405),
    ],
)
def test_unknown_routes_and_methods(client, spec_schemas, method, path, status):
    """Unknown routes are 404 and known routes with the wrong method 405, both JSON errors."""
    resp = client.request(method, path)
    assert resp.status_code == status
    validate(spec_schemas["error"], resp.json())


def test_path_outside_api_root_is_404(sim):
    """Only paths under /api are served."""
    with httpx.Client(timeout=10, headers=AUTH) as c:
        resp = c.get(sim.url.removesuffix("/api") + "/v2/apps/runs")
    assert resp.status_code == 404
