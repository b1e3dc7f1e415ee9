"""Run lifecycle (RUNNING -> COMPLETE/FAILED, overrides) and the run list's filters and pages."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_until
from tests.sim_helpers import list_runs, submit, validate


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
