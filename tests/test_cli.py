"""The command line as a user runs it: real subprocesses, real exit codes, real output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import load_openapi_spec
from tests.daemon_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


cli = run_cli


def test_version_and_help():
    """`--version` names the program; `--help` lists every subcommand."""
    from watcher import __version__

    assert cli("--version").stdout.strip() == f"aihub-watcher {__version__}"
    out = cli("--help").stdout
    for command in ("run", "check", "schema", "status", "explain", "retry", "demo", "hub-sim"):
        assert command in out


def test_check_example_config_exits_0_with_summary_table():
    """The shipped example validates; `check` prints the rule table."""
    result = cli("check", "-c", str(ROOT / "config.example.yaml"))
    assert result.returncode == 0, result.stderr
    assert "invoices" in result.stdout


def test_check_reports_every_problem_with_file_line_col(tmp_path: Path):
    """A config with several mistakes: all reported, each as FILE:LINE:COL: key: message."""
    config = tmp_path / "bad.yaml"
    config.write_text(
        "hub:\n"
        "  base_url: https://aihub.example.com/api\n"
        "  max_concurency: 4\n"
        "rules:\n"
        "  - name: a\n"
        "    watch: relative/path\n"
        "    remote_dir: acme/x\n"
        "    deployment_id: d\n"
        "    settle_seconds: -1\n"
    )
    result = cli("check", "-c", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(ln.startswith(f"{config}:3:") and "max_concurrency" in ln for ln in lines)
    assert any(ln.startswith(f"{config}:6:") and "watch" in ln for ln in lines)
    assert any(ln.startswith(f"{config}:9:") and "settle_seconds" in ln for ln in lines)


def test_schema_is_json_schema():
    """`schema` prints a JSON Schema an editor can use."""
    import jsonschema

    schema = json.loads(cli("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "rules" in schema["properties"]


@pytest.fixture(scope="module")
def hub_sim_answer() -> tuple[str, int, dict[str, Any], int]:
    """`hub-sim --port 0 --token t` started as a user would, sent one run, then SIGTERMed:
    (the first line it printed, the POST's status, its body, the exit code)."""
    with subprocess.Popen(
        [sys.executable, "-m", "watcher", "hub-sim", "--port", "0", "--token", "t"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            resp = httpx.post(
                f"{url}/v2/apps/deployments/dep-1/runs",
                json={"input_dir": "acme/ws/fs/Instabase Drive/in"},
                headers={"Authorization": "Bearer t"},
            )
        finally:
            proc.send_signal(signal.SIGTERM)
        return url, resp.status_code, resp.json(), proc.wait(timeout=10)


def test_hub_sim_answers_a_run_submission_with_202(hub_sim_answer):
    """`hub-sim --port 0 --token t` prints its URL first and answers spec-shaped runs."""
    url, status, body, exit_code = hub_sim_answer
    assert url.startswith("http://127.0.0.1:")
    assert status == 202
    assert body["status"] == "RUNNING" and body["input_dir"] == "acme/ws/fs/Instabase Drive/in"
    assert exit_code == 0


def test_hub_sim_run_matches_the_openapi_run_schema(hub_sim_answer):
    """The run `hub-sim` answers with is a valid `run` of the vendor's OpenAPI description."""
    from openapi_schema_validator import OAS30Validator

    spec = load_openapi_spec()
    OAS30Validator(spec["components"]["schemas"]["run"]).validate(hub_sim_answer[2])


def test_demo_once_submits_the_samples_and_exits_0(tmp_path: Path):
    """`demo --once`: the samples become runs, their results land as JSON files in the results
    folder the banner names, and it exits cleanly."""
    result = cli("demo", "--once", "--dir", str(tmp_path / "demo"), timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "runs created at the simulator: 3" in result.stdout
    results = tmp_path / "demo" / "results" / "demo-invoices"
    assert f"results land in {results}" in result.stdout
    assert "results saved: 3" in result.stdout
    saved = json.loads((results / "invoice-2026-001.json").read_text())
    assert len(saved["files"]) == 2
    assert (tmp_path / "demo" / "done" / "invoice-2026-001" / "invoice.pdf").exists()
    assert '"event": "run.submitted"' in result.stdout or "run.submitted" in result.stdout


def test_run_with_invalid_config_exits_2_with_the_problems(tmp_path: Path):
    """`run` on a broken config refuses to start (exit 2) and says what and where."""
    config = tmp_path / "c.yaml"
    config.write_text("hub: {base_url: 'https://x.example/api'}\nrules: []\n")
    result = cli("run", "-c", str(config), "--log-format", "json", timeout=30)
    assert result.returncode == 2
    event = json.loads(result.stdout.strip().splitlines()[-1])
    assert event["event"] == "config.invalid"
    assert any("rules" in issue for issue in event["issues"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signal(tmp_path: Path, hub_sim, sig):
    """SIGTERM/SIGINT: the daemon logs daemon.stopped and exits 0."""
    from tests.daemon_helpers import DaemonProcess, write_config

    (tmp_path / "w").mkdir()
    config = write_config(
        tmp_path / "c.yaml", hub_url=hub_sim.url, watch=tmp_path / "w", state_dir=tmp_path / "s"
    )
    daemon = DaemonProcess(config, env={"AIHUB_TEST_TOKEN": "t"})
    daemon.wait_ready()
    daemon.signal(sig)
    assert daemon.wait() == 0
    assert daemon.find("daemon.stopped")
    for event in daemon.events:
        assert {"event", "level", "timestamp"} <= event.keys()
