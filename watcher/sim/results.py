"""Run results (GET /v2/apps/runs/{id}/results): one made-up, deterministic entry per input file.

Shaped like the spec's resultsResponse; the extracted fields echo each file's name, size and
(for batch files) sha256, so a test can tell which bytes a run saw. Imports no watcher module
outside sim/.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from watcher.sim.runs import COMPLETE, InputFile

_CLASSES: Final = ("Invoice", "Receipt", "Bank Statement", "Driver License")
FLAGS: Final = (
    "include_review_results",
    "include_confidence_scores",
    "include_validation_results",
    "include_source_info",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultsQuery:
    """The getRunResults query, already validated."""

    file_offset: int
    review: bool
    confidence: bool
    validation: bool
    source: bool


def results_page(
    run: dict[str, Any],
    files: list[tuple[InputFile, str]],
    custom_keys: dict[str, Any],
    q: ResultsQuery,
    page_size: int,
) -> dict[str, Any]:
    """One page of the resultsResponse for `run` (a spec `run`), whose inputs are `files`
    (each with its input_file_path). Files come only once the run is COMPLETE."""
    complete = run["status"] == COMPLETE
    pool = files if complete else []
    page = pool[q.file_offset : q.file_offset + page_size]
    out: dict[str, Any] = {
        "id": run["id"],
        "status": run["status"],
        "message": run["msg"] or (f"Completed {len(files)} files" if complete else None),
        "start_timestamp": run["start_timestamp"],
        "finish_timestamp": run["finish_timestamp"],
        "files": [_file_entry(f, path, q) for f, path in page],
        "keys": {"custom": custom_keys},
        "has_more": q.file_offset + page_size < len(pool),
    }
    if run["batch_id"] is not None:
        out["batch_id"] = str(run["batch_id"])  # a string in resultsResponse
    if q.review:
        out["review_completed"] = complete
    return out


def _file_entry(f: InputFile, input_path: str, q: ResultsQuery) -> dict[str, Any]:
    digest = hashlib.sha256(f"{f.path}\0{f.size}\0{f.sha256}".encode()).digest()
    pages = 1 + digest[0] % 3
    document: dict[str, Any] = {
        "class_name": _CLASSES[digest[1] % len(_CLASSES)],
        "page_numbers": list(range(1, pages + 1)),
        "fields": _fields(f, digest, q),
    }
    if q.review:
        document["review_completed"] = True
        document["class_edit_history"] = []
    if q.confidence:
        document["classification_confidence"] = {"model": _score(digest[2])}
    if q.validation:
        document["validations"] = {"final_result_pass": True}
    if q.source:
        document["page_layouts"] = [
            {"page_number": n, "width": 612.0, "height": 792.0} for n in range(pages)
        ]
        document["post_processed_paths"] = [
            f"{input_path}.processed/page-{n}.png" for n in range(pages)
        ]
    return {
        "original_file_name": f.path.rpartition("/")[2],
        "input_file_path": input_path,
        "documents": [document],
    }


def _fields(f: InputFile, digest: bytes, q: ResultsQuery) -> list[dict[str, Any]]:
    values = [("file_name", f.path, "TEXT"), ("size_bytes", str(f.size), "NUMBER")]
    if f.sha256 is not None:
        values.append(("sha256", f.sha256, "TEXT"))
    fields = []
    for i, (name, value, kind) in enumerate(values):
        field: dict[str, Any] = {"field_name": name, "value": value, "type": kind}
        if q.review:
            field["edit_history"] = []
        if q.confidence:
            field["confidence"] = {"model": _score(digest[3 + i]), "ocr": _score(digest[8 + i])}
        if q.validation:
            field["validations"] = {"valid": True, "alerts": []}
        if q.source:
            field["source_coordinates"] = [
                {"top_x": 36.0, "top_y": 40.0 + 30 * i, "bottom_x": 300.0,
                 "bottom_y": 60.0 + 30 * i, "page_number": 0}
            ]  # fmt: skip
        fields.append(field)
    return fields


def _score(byte: int) -> float:
    """A deterministic confidence in [0.5, 1.0]."""
    return round(0.5 + byte / 510, 4)
