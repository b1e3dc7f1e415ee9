"""contrib/: the Grafana dashboard and the Prometheus alert rules use only the series the
service exports (taken from its own registry), with their labels, in well-formed files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.metrics.recorder import PrometheusMetrics
from watcher.metrics.series import SERIES
from watcher.metrics.snapshot import Snapshot

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
# PromQL words that look like names but are not metrics.
KEYWORDS = {"by", "without", "and", "or", "unless", "bool", "offset", "on", "ignoring"}
KEYWORDS |= {"group_left", "group_right", "inf", "nan"}
# Labels Prometheus adds to every scraped series, and the histogram bucket bound.
TARGET_LABELS = {"instance", "job", "le"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> tuple[set[str], set[str]]:
    """(sample names a query can use, label names) from the service's own registry."""
    m = PrometheusMetrics()
    m.add_scrape(lambda: Snapshot(now=0.0))
    names = {
        family.name + suffix for family in m.registry.collect() for suffix in SUFFIXES[family.type]
    }
    labels = {label for s in SERIES for label in s.labels} | TARGET_LABELS
    return names, labels


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names, label values, durations or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and strings
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group()
        if word.lower() in KEYWORDS or text[m.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def label_names(expr: str) -> set[str]:
    """Label names in matchers and in by/without/on/ignoring clauses."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    found = set()
    for body in re.findall(r"\{([^}]*)\}", text):
        found |= {m for m in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", body)}
    for body in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        found |= {w.strip() for w in body.split(",") if w.strip()}
    return found


def test_the_extractors_find_what_they_should() -> None:
    """The parsing above catches a wrong name and a wrong label (else the tests below prove
    nothing)."""
    expr = (
        "histogram_quantile(0.9, sum by (le, rulez) "
        '(rate(aihub_watcher_nope_bucket{rule=~"$rule", outcome!="x"}[5m]))) '
        "/ on (instance) group_left sum(up) > 0 and time() - x_total offset 5m"
    )
    assert metric_names(expr) == {"aihub_watcher_nope_bucket", "up", "x_total"}
    assert label_names(expr) == {"le", "rulez", "rule", "outcome", "instance"}
    names, labels = exported()
    assert "aihub_watcher_submissions_total" in names
    assert "aihub_watcher_submissions" not in names  # a counter is queried with _total
    assert "aihub_watcher_submit_latency_seconds_bucket" in names
    assert "aihub_watcher_drops" in names and "rule" in labels


def _dashboard() -> dict[str, Any]:
    return json.loads((CONTRIB / "grafana-dashboard.json").read_text(encoding="utf-8"))


def _exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) of every panel target and templating query."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
            assert inner, f"variable {var['name']}: unexpected query {query!r}"
            out.append((f"variable {var['name']}", f"{inner[1]}{{{inner[2]}!=''}}"))
    return out


def test_the_dashboard_is_well_formed() -> None:
    """A dashboard Grafana imports: uid, title, unique panel ids on the 24-column grid, and
    every data panel queries through the data source variable."""
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    kinds = {p["type"] for p in dash["panels"]}
    assert {"timeseries", "stat"} <= kinds
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "rule"} <= names


def test_the_dashboard_uses_only_exported_series_and_labels() -> None:
    """Every metric and label a panel or variable queries is one the service exports."""
    names, labels = exported()
    problems = []
    for where, expr in _exprs(_dashboard()):
        for name in sorted(metric_names(expr) - names):
            problems.append(f"{where}: {name} is not exported")
        for label in sorted(label_names(expr) - labels):
            problems.append(f"{where}: label {label} is not exported")
    assert problems == []


def test_the_dashboard_covers_every_series() -> None:
    """Each exported aihub_watcher_ family appears in some panel."""
    used = set().union(*(metric_names(e) for _, e in _exprs(_dashboard())))
    families = {s.name for s in SERIES}
    shown = {f for f in families if any(u.startswith(f) for u in used)}
    assert shown == families


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((CONTRIB / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_well_formed() -> None:
    """Each rule has a unique alert name, an expr, a `for`, a severity and a summary; the
    three the issue asks for are there with their thresholds."""
    rules = _alert_rules()
    alerts = [r["alert"] for r in rules]
    assert len(alerts) == len(set(alerts))
    for rule in rules:
        assert rule["expr"].strip() and re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    by_name = {r["alert"]: r for r in rules}
    paused = by_name["AIHubWatcherHubPaused"]
    assert "aihub_watcher_hub_paused" in paused["expr"] and paused["for"] == "5m"
    assert "> 900" in by_name["AIHubWatcherOldestReadyDrop"]["expr"]
    assert 'status="FAILED"' in by_name["AIHubWatcherRunsFailing"]["expr"]


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_each_alert_uses_only_exported_series_and_labels(rule: dict[str, Any]) -> None:
    """No alert can silently never fire because of a misspelt name or label."""
    names, labels = exported()
    assert metric_names(rule["expr"]) <= names
    assert label_names(rule["expr"]) <= labels
    assert metric_names(rule["expr"])


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")
def test_the_alert_rules_fire_when_they_should() -> None:
    """promtool checks the rules and runs contrib/prometheus-alerts.test.yml: each alert fires
    on the series it is about, only after its `for:`, and stays quiet on a healthy rule."""
    assert PROMTOOL is not None
    check = subprocess.run(
        [PROMTOOL, "check", "rules", "prometheus-alerts.yml"],
        cwd=CONTRIB,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run(
        [PROMTOOL, "test", "rules", "prometheus-alerts.test.yml"],
        cwd=CONTRIB,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
