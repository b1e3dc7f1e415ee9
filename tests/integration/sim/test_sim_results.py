"""Run results: one entry per input file, paged with file_offset/has_more, optional details."""

from __future__ import annotations

import hashlib

import pytest

from tests.sim_helpers import create_batch, submit, validate_ref

RUN_DIR = "org/ws/fs/Drive/in"


def _results(client, run_id, **params):
    resp = client.get(f"/v2/apps/runs/{run_id}/results", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _all_pages(client, run_id, **params):
    pages, offset = [], 0
    while True:
        page = _results(client, run_id, file_offset=offset, **params)
        pages.append(page)
        if not page["has_more"]:
            return pages
        offset += len(page["files"])


def test_results_come_in_pages_covering_every_file_once(client, sim, spec_schemas):
    """With a page size of 4, 10 files come back as 4 + 4 + 2, in order, each page spec-shaped."""
    sim.options.results_page_size = 4
    for i in range(10):
        sim.add_path(f"{RUN_DIR}/f{i:02}.pdf", size=100 + i)
    run_id = submit(client, input_dir=RUN_DIR).json()["id"]
    pages = _all_pages(client, run_id)
    for page in pages:
        validate_ref(spec_schemas, "resultsResponse", page)
        assert page["id"] == run_id and page["status"] == "COMPLETE"
    assert [len(p["files"]) for p in pages] == [4, 4, 2]
    assert [p["has_more"] for p in pages] == [True, True, False]
    files = [f for p in pages for f in p["files"]]
    assert [f["original_file_name"] for f in files] == [f"f{i:02}.pdf" for i in range(10)]
    assert files[3]["input_file_path"] == f"{RUN_DIR}/f03.pdf"
    fields = {f["field_name"]: f["value"] for f in files[3]["documents"][0]["fields"]}
    assert fields == {"file_name": "f03.pdf", "size_bytes": "103"}
    assert _results(client, run_id, file_offset=50)["files"] == []
    assert "batch_id" not in pages[0]


def test_results_are_deterministic(client, sim):
    """The same run gives the same results on every call."""
    sim.add_path(f"{RUN_DIR}/a.pdf", size=1)
    run_id = submit(client, input_dir=RUN_DIR).json()["id"]
    flags = {"include_confidence_scores": "true", "include_source_info": "true"}
    assert _results(client, run_id, **flags) == _results(client, run_id, **flags)


def test_batch_run_results_carry_each_files_sha256(client, sim, spec_schemas):
    """A batch run's results name each uploaded file with its size and sha256; batch_id a string."""
    batch_id = create_batch(client)
    client.put(f"/v2/batches/{batch_id}/files/a.pdf", content=b"alpha")
    run_id = submit(client, batch_id=batch_id).json()["id"]
    page = _results(client, run_id)
    validate_ref(spec_schemas, "resultsResponse", page)
    assert page["batch_id"] == str(batch_id)
    (entry,) = page["files"]
    assert entry["original_file_name"] == "a.pdf"
    assert entry["input_file_path"].endswith(f"/{batch_id}/a.pdf")
    fields = {f["field_name"]: f["value"] for f in entry["documents"][0]["fields"]}
    assert fields["sha256"] == hashlib.sha256(b"alpha").hexdigest()
    assert fields["size_bytes"] == "5"


def test_query_flags_add_their_details(client, sim, spec_schemas):
    """Each include_* flag adds the spec's fields for it; without flags they are absent."""
    sim.add_path(f"{RUN_DIR}/a.pdf", size=1)
    settings = {"keys": {"custom": {"region": "eu"}}}
    run_id = submit(client, input_dir=RUN_DIR, settings=settings).json()["id"]
    plain = _results(client, run_id)
    doc = plain["files"][0]["documents"][0]
    assert "classification_confidence" not in doc and "confidence" not in doc["fields"][0]
    assert plain["keys"] == {"custom": {"region": "eu"}}
    flags = {
        "include_review_results": "true",
        "include_confidence_scores": "true",
        "include_validation_results": "true",
        "include_source_info": "true",
    }
    full = _results(client, run_id, **flags)
    validate_ref(spec_schemas, "resultsResponse", full)
    doc = full["files"][0]["documents"][0]
    field = doc["fields"][0]
    assert 0.5 <= doc["classification_confidence"]["model"] <= 1.0
    assert set(field["confidence"]) == {"model", "ocr"}
    assert field["validations"]["valid"] is True and doc["validations"]["final_result_pass"]
    assert doc["page_layouts"] and field["source_coordinates"] and doc["post_processed_paths"]
    assert full["review_completed"] is True and doc["review_completed"] is True


def test_results_before_complete_have_the_status_and_no_files(client, sim, spec_schemas):
    """A RUNNING run answers 200 with its status, no files and no finish_timestamp."""
    sim.options.run_seconds = 3600
    sim.add_path(f"{RUN_DIR}/a.pdf", size=1)
    run_id = submit(client, input_dir=RUN_DIR).json()["id"]
    page = _results(client, run_id)
    validate_ref(spec_schemas, "resultsResponse", page)
    assert page["status"] == "RUNNING" and page["finish_timestamp"] is None
    assert page["files"] == [] and page["has_more"] is False
    sim.set_run_status(run_id, "COMPLETE")
    assert len(_results(client, run_id)["files"]) == 1


@pytest.mark.parametrize(
    "params",
    [{"file_offset": "-1"}, {"file_offset": "x"}, {"include_confidence_scores": "yes"}],
)
def test_bad_query_parameters_are_400(client, spec_schemas, params):
    """A negative or non-integer file_offset, or a flag other than true/false, gets 400."""
    run_id = submit(client, input_dir=RUN_DIR).json()["id"]
    resp = client.get(f"/v2/apps/runs/{run_id}/results", params=params)
    assert resp.status_code == 400
    validate_ref(spec_schemas, "error", resp.json())


def test_results_of_an_unknown_run_are_404(client, spec_schemas):
    """Results of a run that doesn't exist are 404; other methods 405."""
    resp = client.get("/v2/apps/runs/nope/results")
    assert resp.status_code == 404
    validate_ref(spec_schemas, "error", resp.json())
    assert client.post("/v2/apps/runs/nope/results").status_code == 405
