"""SimOptions and the hub-sim flags."""

from __future__ import annotations

import argparse

import pytest

from watcher.sim import SimOptions, add_arguments, options_from_args


def test_token_is_not_in_repr():
    """SimOptions' repr leaves the token out."""
    assert "hidden-value" not in repr(SimOptions(token="hidden-value"))


def test_arguments_build_options(tmp_path):
    """add_arguments + options_from_args map every flag onto SimOptions."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(
        [
            "--host", "127.0.0.2", "--port", "8123", "--token", "tok",
            "--record", str(tmp_path / "r.jsonl"), "--fail-rate", "0.25", "--rate-limit", "50",
            "--latency-ms", "5", "--lose-response-rate", "0.1", "--run-seconds", "2",
            "--fail-runs", "0.5", "--seed", "9", "--gateway-error-rate", "0.2", "--forbid-runs",
            "--max-put-bytes", "1000", "--part-size", "64", "--upload-fail-rate", "0.3",
            "--drive-root", str(tmp_path), "--sync-lag-s", "1.5", "--results-page-size", "3",
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
        gateway_error_rate=0.2,
        forbid_runs=True,
        max_put_bytes=1000,
        part_size=64,
        upload_fail_rate=0.3,
        drive_root=tmp_path,
        sync_lag_s=1.5,
        results_page_size=3,
    )
    defaults = options_from_args(parser.parse_args(["--token", "tok"]))
    assert defaults == SimOptions(token="tok")


@pytest.mark.parametrize(
    "argv",
    [[], ["--token", "t", "--fail-rate", "1.5"], ["--token", "t", "--rate-limit", "0"],
     ["--token", "t", "--port", "70000"], ["--token", "t", "--latency-ms", "-1"],
     ["--token", "t", "--part-size", "0"], ["--token", "t", "--max-put-bytes", "1.5"],
     ["--token", "t", "--drive-root", "/no/such/dir"], ["--token", "t", "--sync-lag-s", "nan"],
     ["--token", "t", "--results-page-size", "0"], ["--token", "t", "--upload-fail-rate", "2"]],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(capsys, argv):
    """A missing --token or an out-of-range value is an argparse usage error (exit 2)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    assert exc.value.code == 2
    capsys.readouterr()
