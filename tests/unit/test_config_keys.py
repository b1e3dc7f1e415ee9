"""The key tables are the one truth: the example documents them, the dataclasses follow them."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tests.unit.config_helpers import EXAMPLE
from watcher.config import (
    HUB_KEYS,
    RULE_KEYS,
    SETTINGS_KEYS,
    SETTINGS_KEYS_KEYS,
    TOP_KEYS,
    HubConfig,
    Rule,
    load_config,
)


def test_example_config_validates_with_only_missing_folder_warnings() -> None:
    """config.example.yaml loads; its only issues are 'watch does not exist yet' warnings."""
    config = load_config(EXAMPLE, env={})
    assert [r.name for r in config.rules] == ["invoices", "claims"]
    assert {r.drop for r in config.rules} == {"folder", "files"}
    missing = [f"rules[{i}].watch" for i, r in enumerate(config.rules) if not r.watch.exists()]
    assert [i.key_path for i in config.warnings] == missing
    for issue in config.warnings:
        assert issue.severity == "warning"
        assert "does not exist yet; the daemon waits for it" in issue.message


def test_example_config_documents_every_key() -> None:
    """Every key in the tables appears in the example, with the table's doc line as its comment."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for spec in (*TOP_KEYS, *HUB_KEYS, *RULE_KEYS):
        assert f"# {spec.doc}\n" in text, spec.name
        assert re.search(rf"^\s*(#\s*)?(- )?{spec.name}:", text, re.MULTILINE), spec.name
    for name, doc in (*SETTINGS_KEYS.items(), *SETTINGS_KEYS_KEYS.items()):
        assert f"# {doc}\n" in text, name
        assert re.search(rf"^\s+{name}:", text, re.MULTILINE), name


def test_dataclass_defaults_match_the_key_table() -> None:
    """Rule and HubConfig defaults equal the table's defaults (the table is the one truth)."""
    rule = Rule(name="r", watch=Path("/w"), remote_dir="o/w", deployment_id="d")
    for spec in RULE_KEYS:
        if not spec.required:
            expected = spec.default
            actual = getattr(rule, spec.name)
            if spec.name == "settings":
                actual = dict(actual)
            assert actual == expected, spec.name
    hub = HubConfig(base_url="https://h/api")
    for spec in HUB_KEYS:
        if not spec.required:
            assert getattr(hub, spec.name) == spec.default, spec.name


def test_rule_settings_are_read_only_copies(tree: Path) -> None:
    """Rule.settings is a read-only view of a private copy; settings_dict() gives a fresh copy."""
    source: dict[str, Any] = {"tags": ["a"], "keys": {"custom": {"k": "v"}}}
    rule = Rule(name="r", watch=Path("/w"), remote_dir="o", deployment_id="d", settings=source)
    source["tags"].append("mutated")
    assert isinstance(rule.settings, MappingProxyType)
    assert rule.settings["tags"] == ["a"]
    with pytest.raises(TypeError):
        rule.settings["tags"] = []  # type: ignore[index]
    copy = rule.settings_dict()
    copy["keys"]["custom"]["k"] = "changed"
    assert rule.settings["keys"]["custom"]["k"] == "v"
    assert hash(rule) == hash(Rule(name="r", watch=Path("/w"), remote_dir="o", deployment_id="d"))
    assert "settings" not in repr(rule)
