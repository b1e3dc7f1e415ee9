"""The request record: memory and the --record JSONL file, never the token."""

from __future__ import annotations

import json
import time

import httpx

from tests.sim_helpers import AUTH, TOKEN, submit
from watcher.sim import SimOptions, serve_in_thread


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
