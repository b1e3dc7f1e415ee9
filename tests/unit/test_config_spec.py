"""The new keys against the vendor's OpenAPI description: the results query flags, and the
upload limits the spec states (it lives in ../shared/; see tests.conftest.load_openapi_spec)."""

from __future__ import annotations

from typing import Any

from tests.conftest import load_openapi_spec
from watcher.config import RESULTS_OPTION_KEYS, RULE_KEYS, UPLOAD_KEYS
from watcher.config.keys_upload import PART_SIZE_DEFAULT, SINGLE_PUT_MAX_DEFAULT

RESULTS = "/v2/apps/runs/{run_id}/results"
PUT_FILE = "/v2/batches/{batch_id}/files/{filename}"


def _query_params(spec: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    params = spec["paths"][path]["get"]["parameters"]
    return {p["name"]: p for p in params if p.get("in") == "query"}


def test_results_options_are_the_boolean_flags_of_get_run_results() -> None:
    """results_options accepts exactly the spec's boolean query flags, with the spec's defaults."""
    params = _query_params(load_openapi_spec(), RESULTS)
    flags = {n: p["schema"] for n, p in params.items() if p["schema"].get("type") == "boolean"}
    assert {s.name for s in RESULTS_OPTION_KEYS} == set(flags)
    for spec in RESULTS_OPTION_KEYS:
        assert spec.kind == "bool"
        assert spec.default == flags[spec.name].get("default", False), spec.name
    # The only other query parameter is the page offset, which the daemon owns.
    assert set(params) - set(flags) == {"file_offset"}
    hints = dict(next(s for s in RULE_KEYS if s.name == "results_options").hints)
    assert "file_offset" in hints


def test_upload_defaults_follow_the_spec() -> None:
    """One PUT up to the spec's suggested 10 MB; the part size of the spec's example session."""
    spec = load_openapi_spec()
    put = spec["paths"][PUT_FILE]["put"]["description"]
    assert "suggested max size for each file is 10 MB" in put
    session = spec["components"]["schemas"]["multipartUploadSessionResponse"]
    assert session["properties"]["part_size"]["example"] == PART_SIZE_DEFAULT
    assert SINGLE_PUT_MAX_DEFAULT == 10 * 1024 * 1024
    defaults = {s.name: s.default for s in UPLOAD_KEYS}
    assert defaults["single_put_max_bytes"] == SINGLE_PUT_MAX_DEFAULT
    assert defaults["part_size_bytes"] == PART_SIZE_DEFAULT
