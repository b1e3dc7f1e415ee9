"""`status` says when a drop waiting for its rule's active_hours will go, in text and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from watcher.cli import main
from watcher.config.schedule import DAY_NAMES
from watcher.ledger import Ledger


def _config(tmp: Path, *, closed_tz: str) -> Path:
    """Rules `night` (open only the day after tomorrow, so closed now) and `always`."""
    day = DAY_NAMES[(datetime.now(UTC).weekday() + 2) % 7]
    rules = []
    for name, extra in (("night", {"active_hours": day, "tz": closed_tz}), ("always", {})):
        (tmp / name).mkdir()
        rules.append(
            {"name": name, "watch": str(tmp / name), "remote_dir": f"acme/x/fs/d/{name}"}
            | {"deployment_id": "dep-1", **extra}
        )
    data = {"hub": {"base_url": "https://h/api"}, "state_dir": str(tmp / "state"), "rules": rules}
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _record(tmp: Path) -> dict[str, str]:
    with Ledger.in_state_dir(tmp / "state") as led:
        ids = {}
        for rule, drop in (("night", "n1"), ("always", "a1")):
            d = led.record_ready(
                rule=rule, drop=drop, fingerprint="f", input_dir=f"x/{drop}", deployment_id="dep"
            )
            ids[drop] = d.id
        return ids


def test_status_shows_when_a_waiting_drop_will_go(tmp_path: Path, capsys):
    """A ready drop of a closed rule says "waiting for its schedule (opens <day> 00:00 <zone>)";
    a drop of an open rule says nothing of the kind."""
    config = _config(tmp_path, closed_tz="Asia/Tokyo")
    ids = _record(tmp_path)
    # Two days ahead in UTC is today or tomorrow + 1 in Tokyo (+9): closed now either way.
    day = DAY_NAMES[(datetime.now(UTC).weekday() + 2) % 7]

    assert main(["status", "-c", str(config)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert f"waiting for its schedule (opens {day} 00:00 Asia/Tokyo)" in lines[ids["n1"]]
    assert "waiting" not in lines[ids["a1"]]

    assert main(["status", "-c", str(config), "--json"]) == 0
    drops = {d["drop"]: d for d in json.loads(capsys.readouterr().out)["drops"]}
    waiting = drops["n1"]["waiting_for_schedule"]
    assert waiting["note"] == f"waiting for its schedule (opens {day} 00:00 Asia/Tokyo)"
    at = datetime.fromisoformat(waiting["opens_at"])
    assert at.utcoffset() == timedelta(hours=9) and (at.hour, at.minute) == (0, 0)
    assert f"{at:%a}" == day
    assert drops["a1"]["waiting_for_schedule"] is None
