"""The keys of a rule's `upload:` and `results_options:` mappings, declared once, and their limits.

Core: imports only the stdlib and `watcher.config` (checks, keyspec).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from watcher.config import checks
from watcher.config.keyspec import KeySpec, defaults_of

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB
# The spec (PUT /v2/batches/{id}/files/{filename}): "the suggested max size for each file is
# 10 MB"; larger files go through a multipart session, whose example part_size is 10485760.
SINGLE_PUT_MAX_DEFAULT: Final = 10 * MIB
PART_SIZE_DEFAULT: Final = 10 * MIB
# docs.instabase.com/overview/limitations: "Single file: 50 MB or 800 pages"; "Total single-upload
# size: 100 MB" bounds what one request may carry.
MAX_FILE_DEFAULT: Final = 50 * MIB
REQUEST_MAX: Final = 100 * MIB
# Parts and single PUTs as small as 1 KiB are allowed so tests can exercise multipart with small
# files; anything smaller would only multiply requests.
CHUNK_MIN: Final = 1 * KIB

UPLOAD_KEYS: Final[tuple[KeySpec, ...]] = (
    KeySpec(
        name="workspace",
        kind="str",
        nullable=True,
        doc="the batch's workspace (unset: your personal workspace; service accounts need one)",
        check=checks.check_workspace,
    ),
    KeySpec(
        name="delete_batch",
        kind="bool",
        # The batch is a transient copy of files that stay on local disk: kept, thousands of
        # them would clutter the AI Hub drive. The results are fetched before the delete.
        default=True,
        doc="delete the batch once its run completes and its results are fetched (false: keep)",
    ),
    KeySpec(
        name="single_put_max_bytes",
        kind="int",
        default=SINGLE_PUT_MAX_DEFAULT,
        minimum=CHUNK_MIN,
        maximum=REQUEST_MAX,
        doc="files up to this size go up in one PUT; larger ones in a multipart session",
    ),
    KeySpec(
        name="part_size_bytes",
        kind="int",
        default=PART_SIZE_DEFAULT,
        minimum=CHUNK_MIN,
        maximum=REQUEST_MAX,
        doc="multipart part size, used when AI Hub's session names none (its part_size wins)",
    ),
    KeySpec(
        name="max_file_bytes",
        kind="int",
        default=MAX_FILE_DEFAULT,
        minimum=1,
        maximum=1024 * GIB,
        doc="largest file to upload; a drop with a bigger one is rejected before any upload",
    ),
)

# The boolean query flags of GET /v2/apps/runs/{run_id}/results (file_offset is the daemon's:
# it pages through every result itself). A test compares these names with the spec.
RESULTS_OPTION_KEYS: Final[tuple[KeySpec, ...]] = tuple(
    KeySpec(name=name, kind="bool", default=False, doc=doc)
    for name, doc in (
        ("include_review_results", "add human review details (review_completed, edit history)"),
        ("include_confidence_scores", "add confidence scores (classification, model and OCR)"),
        ("include_validation_results", "add validation results (valid, alerts, failures)"),
        (
            "include_source_info",
            "add source details (page layouts, field coordinates, post-processed paths)",
        ),
    )
)
RESULTS_OPTION_HINTS: Final = (
    ("file_offset", "the daemon sets it: it fetches every page of the results itself"),
)

UPLOAD_DEFAULTS: Final[Mapping[str, object]] = defaults_of(UPLOAD_KEYS)
RESULTS_OPTIONS_DEFAULT: Final[Mapping[str, object]] = MappingProxyType({})
