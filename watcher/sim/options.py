"""The simulator's options and its `hub-sim` command-line flags.

Standard library only, no watcher module: the CLI imports this to build its parser
without loading the simulator itself.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

MIB: Final = 1024 * 1024


@dataclass(slots=True, kw_only=True)
class SimOptions:
    """Server address, token and fault switches; mutable so tests can flip faults while it runs."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str = field(default="t", repr=False)
    record: Path | None = None
    fail_rate: float = 0.0  # P of 503 on run submission
    rate_limit: float | None = None  # run submissions per second, then 429 + Retry-After
    latency_ms: float = 0.0  # added before answering any request
    lose_response_rate: float = 0.0  # create the run, then close the connection with no response
    gateway_error_rate: float = 0.0  # create the run, then answer 502 as a failing gateway would
    forbid_runs: bool = False  # 403 on run submission only: a token that may list but not run
    run_seconds: float = 0.0  # RUNNING -> COMPLETE after this
    fail_runs: float = 0.0  # P that a run ends FAILED
    seed: int | None = None
    max_put_bytes: int = 100 * MIB  # largest body of one file PUT, else 413
    part_size: int = 10 * MIB  # the part_size new multipart sessions get
    upload_fail_rate: float = 0.0  # P of 503 on a file or part PUT (body read, nothing stored)
    drive_root: Path | None = None  # HEAD /v2/files/a/b answers from DIR/a/b
    sync_lag_s: float = 0.0  # a drive file is visible this long after its last change (mtime)
    results_page_size: int = 50  # files per page of run results


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a directory: {text}")
    return path


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from exc
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `hub-sim` flags to `parser` (the CLI's subcommand parser)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=0, help="port; 0 picks a free one (default 0)"
    )
    parser.add_argument("--token", required=True, help="the Bearer token clients must present")
    parser.add_argument(
        "--record", type=Path, metavar="FILE.jsonl", help="append one JSON line per request"
    )
    parser.add_argument(
        "--fail-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P of 503 per run submission",
    )
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        default=None,
        metavar="N",
        help="run submissions per second, then 429 with Retry-After",
    )
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, help="delay before every answer"
    )
    parser.add_argument(
        "--lose-response-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P of creating the run, then closing the connection with no response",
    )
    parser.add_argument(
        "--gateway-error-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P of creating the run, then answering 502 Bad Gateway (a lying gateway)",
    )
    parser.add_argument(
        "--forbid-runs",
        action="store_true",
        help="answer 403 to run submissions (a token that may list runs but not start them)",
    )
    parser.add_argument(
        "--run-seconds",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="runs stay RUNNING for S seconds, then COMPLETE",
    )
    parser.add_argument(
        "--fail-runs", type=_probability, default=0.0, metavar="P", help="P that a run ends FAILED"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault decisions")
    _add_upload_arguments(parser)


def _add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of batches, uploads, the simulated drive and run results."""
    parser.add_argument(
        "--max-put-bytes",
        type=_count,
        default=100 * MIB,
        metavar="BYTES",
        help="largest single file PUT; bigger ones get 413 (default 100 MiB)",
    )
    parser.add_argument(
        "--part-size",
        type=_count,
        default=10 * MIB,
        metavar="BYTES",
        help="part_size of new multipart upload sessions (default 10 MiB)",
    )
    parser.add_argument(
        "--upload-fail-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P of 503 per file or part PUT (nothing is stored)",
    )
    parser.add_argument(
        "--drive-root",
        type=_directory,
        default=None,
        metavar="DIR",
        help="HEAD /v2/files/a/b.pdf answers from DIR/a/b.pdf (a simulated synced drive)",
    )
    parser.add_argument(
        "--sync-lag-s",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="a drive file is visible S seconds after its last change",
    )
    parser.add_argument(
        "--results-page-size",
        type=_count,
        default=50,
        metavar="N",
        help="files per page of run results (default 50)",
    )


def options_from_args(ns: argparse.Namespace) -> SimOptions:
    """Build SimOptions from a namespace parsed with `add_arguments`."""
    return SimOptions(
        host=ns.host,
        port=ns.port,
        token=ns.token,
        record=ns.record,
        fail_rate=ns.fail_rate,
        rate_limit=ns.rate_limit,
        latency_ms=ns.latency_ms,
        lose_response_rate=ns.lose_response_rate,
        gateway_error_rate=ns.gateway_error_rate,
        forbid_runs=ns.forbid_runs,
        run_seconds=ns.run_seconds,
        fail_runs=ns.fail_runs,
        seed=ns.seed,
        max_put_bytes=ns.max_put_bytes,
        part_size=ns.part_size,
        upload_fail_rate=ns.upload_fail_rate,
        drive_root=ns.drive_root,
        sync_lag_s=ns.sync_lag_s,
        results_page_size=ns.results_page_size,
    )
