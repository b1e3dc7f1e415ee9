"""The AI Hub simulator over real loopback HTTP: spec shapes, auth, faults, lists, files, record."""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from tests.conftest import OPENAPI_PATH, wait_until
from watcher.sim import (
    HubSim,
    SimOptions,
    add_arguments,
    options_from_args,
    serve_in_thread,
)

TOKEN = "sim-token-9f3b2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim() -> Iterator[HubSim]:
    with serve_in_thread(SimOptions(token=TOKEN, seed=7)) as s:
        yield s


@pytest.fixture
def client(sim: HubSim) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def spec_schemas() -> dict[str, Any]:
    if not OPENAPI_PATH.exists():
        pytest.skip(f"OpenAPI description not found at {OPENAPI_PATH}")
    spec = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    return spec["components"]["schemas"]


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


# ------------------------------------------------------------------------ run submission
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
    resp = submit(
        client, "dep-2", batch_id=42, output_dir="org/out", version="1.2", settings=settings
    )
    assert resp.status_code == 202
    (stored,) = sim.runs
    assert stored["id"] == resp.json()["id"]
    assert stored["batch_id"] == 42 and stored["input_dir"] is None
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


def test_batch_id_alone_is_enough(client):
    """batch_id without input_dir is a valid submission."""
    resp = submit(client, batch_id=7)
    assert resp.status_code == 202
    assert resp.json()["batch_id"] == 7


# ------------------------------------------------------------------------ auth
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
        ):
            assert resp.status_code == 401
            validate(spec_schemas["error"], resp.json())
            assert "wrong-token-value-123" not in resp.text and TOKEN not in resp.text
        assert c.head("/v2/files/a").status_code == 401
    assert sim.runs == []
    assert all(r.status == 401 for r in sim.requests)


def test_bearer_scheme_is_case_insensitive(sim):
    """`bearer <token>` is accepted like `Bearer <token>`."""
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        resp = c.get("/v2/apps/runs", headers={"Authorization": f"bearer {TOKEN}"})
    assert resp.status_code == 200


def test_token_is_not_in_repr():
    """SimOptions' repr leaves the token out."""
    assert "hidden-value" not in repr(SimOptions(token="hidden-value"))


# ------------------------------------------------------------------------ faults
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


def test_stop_does_not_wait_for_a_delayed_answer():
    """Leaving serve_in_thread stops promptly even while a request sleeps in latency_ms."""
    with serve_in_thread(SimOptions(token=TOKEN, latency_ms=30_000)) as s:
        parts = urlsplit(s.url)
        assert parts.hostname is not None and parts.port is not None
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        sock.sendall(
            f"GET /api/v2/apps/runs HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        wait_until(lambda: s.connections_accepted == 1, timeout=5, what="connection accepted")
        started = time.monotonic()
    assert time.monotonic() - started < 5
    with sock:
        assert sock.recv(1024) == b""


# ------------------------------------------------------------------------ run lifecycle
def test_run_seconds_moves_running_to_complete(client, sim, spec_schemas):
    """With run_seconds a run reads RUNNING at first, then COMPLETE with a finish_timestamp."""
    sim.options.run_seconds = 1.0
    run_id = submit(client, input_dir="x").json()["id"]
    first = client.get(f"/v2/apps/runs/{run_id}").json()
    assert first["status"] == "RUNNING"
    done = wait_until(
        lambda: (r := client.get(f"/v2/apps/runs/{run_id}").json())["status"] == "COMPLETE" and r,
        timeout=5,
        what="run COMPLETE",
    )
    validate(spec_schemas["run"], done)
    assert done["finish_timestamp"] == done["start_timestamp"] + 1_000_000_000
    assert done["msg"] is None


def test_fail_runs_one_ends_failed(client, sim, spec_schemas):
    """fail_runs=1 makes every run end FAILED with a message."""
    sim.options.fail_runs = 1.0
    run_id = submit(client, input_dir="x").json()["id"]
    failed = wait_until(
        lambda: (r := client.get(f"/v2/apps/runs/{run_id}").json())["status"] == "FAILED" and r,
        timeout=5,
        what="run FAILED",
    )
    validate(spec_schemas["run"], failed)
    assert failed["msg"] and failed["finish_timestamp"] is not None


def test_set_run_status_overrides(client, sim):
    """set_run_status forces a status; non-terminal ones have no finish_timestamp."""
    run_id = submit(client, input_dir="x").json()["id"]
    sim.set_run_status(run_id, "STOPPED_AT_CHECKPOINT")
    got = client.get(f"/v2/apps/runs/{run_id}").json()
    assert got["status"] == "STOPPED_AT_CHECKPOINT" and got["finish_timestamp"] is None
    sim.set_run_status(run_id, "CANCELLED")
    got = client.get(f"/v2/apps/runs/{run_id}").json()
    assert got["status"] == "CANCELLED" and got["finish_timestamp"] is not None
    with pytest.raises(KeyError):
        sim.set_run_status("no-such-run", "FAILED")


def test_unknown_run_is_404_json(client, spec_schemas):
    """GET of an unknown run id answers 404 with a JSON error."""
    resp = client.get("/v2/apps/runs/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 404
    validate(spec_schemas["error"], resp.json())


# ------------------------------------------------------------------------ listing
@pytest.fixture
def populated(client, sim) -> dict[str, list[str]]:
    """Five runs on dep-a and three on dep-b; one FAILED, one STOPPED_AT_CHECKPOINT."""
    ids: dict[str, list[str]] = {"dep-a": [], "dep-b": []}
    for i in range(5):
        ids["dep-a"].append(submit(client, "dep-a", input_dir=f"a/{i}").json()["id"])
    for i in range(3):
        ids["dep-b"].append(submit(client, "dep-b", input_dir=f"b/{i}").json()["id"])
    sim.set_run_status(ids["dep-a"][1], "FAILED")
    sim.set_run_status(ids["dep-b"][0], "STOPPED_AT_CHECKPOINT")
    return ids


def test_list_defaults_to_newest_first(client, populated, spec_schemas):
    """Without parameters every recent run is listed, newest first, each a spec `run`."""
    runs = list_runs(client)
    assert [r["id"] for r in runs] == (populated["dep-a"] + populated["dep-b"])[::-1]
    starts = [r["start_timestamp"] for r in runs]
    assert starts == sorted(starts, reverse=True)
    for run in runs:
        validate(spec_schemas["run"], run)


def test_list_filters(client, populated):
    """deployment_id, status (repeated or comma separated), app_id and run_id filter the list."""
    assert {r["id"] for r in list_runs(client, deployment_id="dep-b")} == set(populated["dep-b"])
    assert list_runs(client, deployment_id="nope") == []
    wanted = {populated["dep-a"][1], populated["dep-b"][0]}
    repeated = client.get(
        "/v2/apps/runs", params=[("status", "FAILED"), ("status", "STOPPED_AT_CHECKPOINT")]
    ).json()["runs"]
    assert {r["id"] for r in repeated} == wanted
    comma = list_runs(client, status="FAILED,STOPPED_AT_CHECKPOINT")
    assert {r["id"] for r in comma} == wanted
    assert {r["id"] for r in list_runs(client, status="FAILED", deployment_id="dep-b")} == set()
    app_id = client.get(f"/v2/apps/runs/{populated['dep-a'][0]}").json()["app_id"]
    assert {r["id"] for r in list_runs(client, app_id=app_id)} == set(populated["dep-a"])
    one = populated["dep-b"][2]
    assert [r["id"] for r in list_runs(client, run_id=one)] == [one]


def test_list_pagination_covers_everything_once(client, populated):
    """limit/offset pages concatenate to the full list with no overlap."""
    full = [r["id"] for r in list_runs(client)]
    paged: list[str] = []
    for offset in range(0, 10, 3):
        paged += [r["id"] for r in list_runs(client, limit=3, offset=offset)]
    assert paged == full
    assert list_runs(client, limit=0) == []
    assert list_runs(client, offset=100) == []


def test_list_sorting(client, populated):
    """order=ASCENDING reverses the default; sort_by=status orders by status name."""
    asc = [r["id"] for r in list_runs(client, order="ASCENDING")]
    assert asc == populated["dep-a"] + populated["dep-b"]
    by_status = [r["status"] for r in list_runs(client, sort_by="status", order="ASCENDING")]
    assert by_status == sorted(by_status)
    assert by_status[0] == "COMPLETE" and by_status[-1] == "STOPPED_AT_CHECKPOINT"
    desc = [r["status"] for r in list_runs(client, sort_by="status", order="DESCENDING")]
    assert desc == sorted(desc, reverse=True)
    page = list_runs(client, sort_by="status", order="DESCENDING", limit=2)
    assert [r["status"] for r in page] == ["STOPPED_AT_CHECKPOINT", "FAILED"]


def test_list_time_window_in_seconds(client, populated):
    """from_timestamp/to_timestamp are unix seconds compared with the ns start_timestamp."""
    now = int(time.time())
    assert len(list_runs(client, from_timestamp=now - 60, to_timestamp=now + 60)) == 8
    assert list_runs(client, from_timestamp=now + 3600) == []
    assert list_runs(client, to_timestamp=now - 3600) == []
    first_s = list_runs(client, order="ASCENDING", limit=1)[0]["start_timestamp"] // 10**9
    # to_timestamp covers its whole second.
    assert list_runs(client, to_timestamp=first_s, order="ASCENDING", limit=1)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"},
        {"limit": "-1"},
        {"offset": "x"},
        {"from_timestamp": "yesterday"},
        {"sort_by": "name"},
        {"order": "up"},
    ],
)
def test_list_rejects_bad_parameters(client, spec_schemas, params):
    """Malformed list parameters answer 400 with a JSON error."""
    resp = client.get("/v2/apps/runs", params=params)
    assert resp.status_code == 400
    validate(spec_schemas["error"], resp.json())


# ------------------------------------------------------------------------ file metadata
ODD_DIR = "org/ws/fs/Instabase Drive/In box #1?/ünïcödé 100% done"


def test_head_folder_of_a_run_input_dir(client, sim):
    """HEAD on a run's input_dir or a parent (encoded space, #, ?, %, unicode) is a folder."""
    assert submit(client, input_dir=ODD_DIR).status_code == 202
    for path in (ODD_DIR, "org/ws/fs/Instabase Drive/In box #1?", "org", ODD_DIR + "/"):
        resp = client.head("/v2/files/" + quote(path, safe="/"))
        assert resp.status_code == 200, path
        assert resp.headers["content-type"] == "application/json"
    raw_paths = [r.path for r in sim.requests if r.method == "HEAD"]
    assert "%23" in raw_paths[0] and "%3F" in raw_paths[0] and "%C3%BC" in raw_paths[0]


def test_head_unknown_path_is_404(client):
    """HEAD on a path no run or add_path mentions is 404; a partial segment is not a folder."""
    assert submit(client, input_dir="org/ws/fs/Drive/in").status_code == 202
    assert client.head("/v2/files/org/ws/fs/Driv").status_code == 404
    assert client.head("/v2/files/" + quote("other/#x?", safe="/")).status_code == 404


def test_head_registered_file_and_folder(client, sim):
    """add_path registers files (octet-stream, Content-Length, last-modified) and folders."""
    name = "org/ws/fs/Drive/x y/report #2?.pdf"
    sim.add_path(name, size=1234)
    sim.add_path("org/ws/fs/Drive/empty folder")
    resp = client.head("/v2/files/" + quote(name, safe="/"))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["content-length"] == "1234"
    modified = email.utils.parsedate_to_datetime(resp.headers["last-modified"])
    assert abs(modified.timestamp() - time.time()) < 60
    for folder in ("org/ws/fs/Drive/x y", "org/ws/fs/Drive/empty folder"):
        resp = client.head("/v2/files/" + quote(folder, safe="/"))
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/json"
    # The connection still works after HEAD answers that announce a length but carry no body.
    assert client.get("/v2/apps/runs").status_code == 200


def test_files_other_methods_are_405(client):
    """Only HEAD is served under /v2/files."""
    resp = client.get("/v2/files/org/a")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "HEAD"


# ------------------------------------------------------------------------ routing and HTTP
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


def test_keep_alive_serves_many_requests_on_one_connection(client, sim):
    """One httpx.Client reuses one connection across answers of every kind, errors included."""
    for i in range(40):
        assert submit(client, input_dir=f"k/{i}").status_code == 202
    assert client.get("/v2/apps/runs").status_code == 200
    assert client.head("/v2/files/k").status_code == 200
    assert client.head("/v2/files/missing").status_code == 404
    assert submit(client).status_code == 400
    assert client.get("/v2/apps/runs", headers={"Authorization": "Bearer no"}).status_code == 401
    assert client.get("/v2/zzz").status_code == 404
    assert sim.connections_accepted == 1


def test_connection_close_is_honoured(client, sim):
    """A request with Connection: close gets Connection: close and the connection ends."""
    for _ in range(2):
        resp = client.get("/v2/apps/runs", headers={"Connection": "close"})
        assert resp.status_code == 200
        assert resp.headers["connection"] == "close"
    assert sim.connections_accepted == 2


def test_chunked_body_is_refused_gracefully(client, sim):
    """A chunked request body gets 411 (not a reset) and the client can carry on."""
    resp = client.post(
        "/v2/apps/deployments/dep-1/runs", content=iter([b'{"input_dir":', b' "x"}'])
    )
    assert resp.status_code == 411
    assert "Content-Length" in resp.json()["message"]
    assert sim.runs == []
    assert submit(client, input_dir="x").status_code == 202


def test_pipelined_requests_are_answered_in_order(sim):
    """Two requests sent back to back on one socket get two answers, in order."""
    req = f"GET /api/v2/apps/runs/{{}} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    data = req.format("first") + "\r\n" + req.format("second") + "Connection: close\r\n\r\n"
    reply = raw_exchange(sim, data.encode())
    assert reply.count(b"HTTP/1.1 404 Not Found") == 2
    assert [r.path for r in sim.requests] == [
        "/api/v2/apps/runs/first",
        "/api/v2/apps/runs/second",
    ]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"garbage\r\n\r\n", b"400"),
        (b"GET /api/v2/apps/runs HTTP/2.0\r\n\r\n", b"505"),
        (b"GET /api/v2/apps/runs HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST /api/x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"400"),
        (b"POST /api/x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
    ],
)
def test_malformed_requests_get_an_error_and_close(sim, data, status):
    """Unparseable requests get a JSON error response, then the server closes the connection."""
    reply = raw_exchange(sim, data)
    assert reply.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in reply
    assert b'"message"' in reply


def test_http10_closes_unless_keep_alive(sim):
    """An HTTP/1.0 request without keep-alive is answered and then closed."""
    reply = raw_exchange(
        sim, f"GET /api/v2/apps/runs HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert reply.endswith(b'{"runs":[]}')


def test_serve_in_thread_releases_the_port():
    """After the context exits nothing listens on the simulator's port any more."""
    with serve_in_thread(SimOptions(token=TOKEN)) as s:
        parts = urlsplit(s.url)
        assert parts.hostname == "127.0.0.1" and parts.path == "/api"
    assert parts.port is not None
    with pytest.raises(OSError):
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()


def test_port_in_use_raises():
    """serve_in_thread raises OSError (and leaves no thread) when the port is taken."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError), serve_in_thread(SimOptions(token=TOKEN, port=port)):
            pass


# ------------------------------------------------------------------------ record
def test_record_file_has_one_flushed_line_per_request(tmp_path):
    """--record appends one JSON line per request (no token anywhere), flushed as it goes."""
    record = tmp_path / "requests.jsonl"
    record.write_text('{"earlier": true}\n', encoding="utf-8")
    with (
        serve_in_thread(SimOptions(token=TOKEN, record=record)) as s,
        httpx.Client(base_url=s.url, headers=AUTH, timeout=10) as c,
    ):
        assert submit(c, "dep-r", input_dir="org/r", settings={"tags": ["t"]}).status_code == 202
        assert c.get("/v2/apps/runs", params={"limit": 5}).status_code == 200
        bad = c.get("/v2/apps/runs", headers={"Authorization": "Bearer wrong-secret-77"})
        assert bad.status_code == 401
        # Complete while the server still runs: every line was flushed as it was written.
        lines = record.read_text(encoding="utf-8").splitlines()
        in_memory = [r.to_json() for r in s.requests]
    assert json.loads(lines[0]) == {"earlier": True}
    entries = [json.loads(line) for line in lines[1:]]
    assert entries == in_memory
    post, get, unauthorized = entries
    assert post["method"] == "POST"
    assert post["path"] == "/api/v2/apps/deployments/dep-r/runs"
    assert post["body"] == {"input_dir": "org/r", "settings": {"tags": ["t"]}}
    assert post["status"] == 202 and post["query"] == {}
    assert get["query"] == {"limit": ["5"]} and get["body"] is None and get["status"] == 200
    assert unauthorized["status"] == 401
    assert abs(post["time"] - time.time()) < 60
    text = record.read_text(encoding="utf-8")
    assert TOKEN not in text and "wrong-secret-77" not in text
    assert "authorization" not in text.lower()


# ------------------------------------------------------------------------ CLI pieces
def test_arguments_build_options(tmp_path):
    """add_arguments + options_from_args map every flag onto SimOptions."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(
        [
            "--host", "127.0.0.2", "--port", "8123", "--token", "tok",
            "--record", str(tmp_path / "r.jsonl"), "--fail-rate", "0.25", "--rate-limit", "50",
            "--latency-ms", "5", "--lose-response-rate", "0.1", "--run-seconds", "2",
            "--fail-runs", "0.5", "--seed", "9",
        ]
    )  # fmt: skip
    assert options_from_args(ns) == SimOptions(
        host="127.0.0.2",
        port=8123,
        token="tok",
        record=tmp_path / "r.jsonl",
        fail_rate=0.25,
        rate_limit=50.0,
        latency_ms=5.0,
        lose_response_rate=0.1,
        run_seconds=2.0,
        fail_runs=0.5,
        seed=9,
    )
    defaults = options_from_args(parser.parse_args(["--token", "tok"]))
    assert defaults == SimOptions(token="tok")


@pytest.mark.parametrize(
    "argv",
    [[], ["--token", "t", "--fail-rate", "1.5"], ["--token", "t", "--rate-limit", "0"],
     ["--token", "t", "--port", "70000"], ["--token", "t", "--latency-ms", "-1"]],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(capsys, argv):
    """A missing --token or an out-of-range value is an argparse usage error (exit 2)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    assert exc.value.code == 2
    capsys.readouterr()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"no stdout line within {timeout}s")
    return proc.stdout.readline()


def test_run_forever_prints_url_first_and_exits_0_on_sigterm(tmp_path):
    """run_forever prints the API root first, serves, and exits 0 on SIGTERM."""
    record = tmp_path / "r.jsonl"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from watcher.sim import SimOptions, run_forever\n"
        f"sys.exit(run_forever(SimOptions(token={TOKEN!r}, record=Path({str(record)!r}))))\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        url = _read_line(proc, timeout=20).strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as c:
            assert submit(c, input_dir="x").status_code == 202
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == "" and err == ""
    assert len(record.read_text(encoding="utf-8").splitlines()) == 1
