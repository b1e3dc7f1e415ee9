"""The key tables are the one truth: the example documents them, the dataclasses follow them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tests.unit.config_helpers import EXAMPLE, SECRET
from watcher.config import (
    HUB_KEYS,
    METRICS_KEYS,
    RESULTS_OPTION_KEYS,
    RULE_KEYS,
    SETTINGS_KEYS,
    SETTINGS_KEYS_KEYS,
    STATE_KEYS,
    TOP_KEYS,
    UPLOAD_KEYS,
    Config,
    HubConfig,
    KeySpec,
    MetricsSettings,
    Rule,
    StateSettings,
    UploadSettings,
    load_config,
)

# Where each table's keys go in the example: (top-level block, pattern of the key's line).
# A commented-out key (`# max_rps: 5`) counts: it documents an optional key.
SECTIONS: dict[str, tuple[str | None, str]] = {
    "top": (None, r"(# )?{name}:"),
    "hub": ("hub", r"  (# )?{name}:"),
    "state": ("state", r"  (# )?{name}:"),
    "metrics": ("metrics", r"  (# )?{name}:"),
    "rule": ("rules", r"\s+(# )?(- )?{name}:"),
    "settings": ("rules", r"\s+{name}:"),
    "group": ("rules", r"\s+(# )?{name}:"),  # the keys of upload: and results_options:
}


def _block(lines: list[str], top: str | None) -> range:
    """The lines of a top-level key's block (all lines for the top level itself)."""
    if top is None:
        return range(len(lines))
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{top}:"))
    ends = (i for i in range(start + 1, len(lines)) if re.match(r"\w+:", lines[i]))
    return range(start, next(ends, len(lines)))


def _doc_above(lines: list[str], i: int, doc: str) -> bool:
    """Whether `# doc` is one of the comment lines right above line `i`."""
    j = i - 1
    while j >= 0 and lines[j].lstrip().startswith("#"):
        if lines[j].strip() == f"# {doc}":
            return True
        j -= 1
    return False


def undocumented(lines: list[str], section: str, keys: Iterable[tuple[str, str]]) -> list[str]:
    """Each (name, doc) whose key is missing from its section or lacks the doc comment above it."""
    top, pattern = SECTIONS[section]
    block = _block(lines, top)
    problems = []
    for name, doc in keys:
        key_re = re.compile(pattern.format(name=re.escape(name)))
        found = [i for i in block if key_re.match(lines[i])]
        if not found:
            problems.append(f"{section} key {name!r} is not in the example")
        elif not any(_doc_above(lines, i, doc) for i in found):
            problems.append(f"{section} key {name!r} lacks the comment '# {doc}' above it")
    return problems


def _table_keys() -> dict[str, list[tuple[str, str]]]:
    return {
        "top": [(s.name, s.doc) for s in TOP_KEYS],
        "hub": [(s.name, s.doc) for s in HUB_KEYS],
        "state": [(s.name, s.doc) for s in STATE_KEYS],
        "metrics": [(s.name, s.doc) for s in METRICS_KEYS],
        "rule": [(s.name, s.doc) for s in RULE_KEYS],
        "settings": [*SETTINGS_KEYS.items(), *SETTINGS_KEYS_KEYS.items()],
        "group": [(s.name, s.doc) for s in (*UPLOAD_KEYS, *RESULTS_OPTION_KEYS)],
    }


def _with_key(lines: list[str], section: str, spec: KeySpec) -> list[str]:
    """The example with `spec` documented at the end of its section's block."""
    indent = {"top": "", "hub": "  ", "rule": "    "}[section]
    end = _block(lines, SECTIONS[section][0]).stop
    added = [f"{indent}# {spec.doc}", f"{indent}{spec.name}: {spec.default}"]
    return [*lines[:end], *added, *lines[end:]]


def test_example_config_validates_with_only_missing_folder_warnings() -> None:
    """config.example.yaml loads; its only issues are 'watch does not exist yet' warnings."""
    config = load_config(EXAMPLE, env={})
    assert [r.name for r in config.rules] == ["invoices", "claims", "scans"]
    assert {r.drop for r in config.rules} == {"folder", "files"}
    assert [r.source for r in config.rules] == ["drive", "drive", "upload"]
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
    for spec in (*UPLOAD_KEYS, *RESULTS_OPTION_KEYS):
        assert f"# {spec.doc}\n" in text, spec.name
        assert re.search(rf"^\s+{spec.name}:", text, re.MULTILINE), spec.name


def test_example_documents_each_key_in_its_section() -> None:
    """Each table key sits in its own section of the example, its doc line right above it."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    problems = [
        problem
        for section, keys in _table_keys().items()
        for problem in undocumented(lines, section, keys)
    ]
    assert problems == []


@pytest.mark.parametrize("section", ["top", "hub", "rule"])
def test_a_key_added_to_a_table_fails_until_documented(section: str) -> None:
    """The drift check reports a new key missing from the example, or documented elsewhere."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    new = KeySpec(name="new_key", kind="int", default=1, doc="a key nobody documented yet")
    keys = [*_table_keys()[section], (new.name, new.doc)]
    assert undocumented(lines, section, keys) == [f"{section} key 'new_key' is not in the example"]
    elsewhere = "rule" if section != "rule" else "hub"
    documented_elsewhere = _with_key(lines, elsewhere, new)
    assert undocumented(documented_elsewhere, section, keys) == [
        f"{section} key 'new_key' is not in the example"
    ]
    documented = _with_key(lines, section, new)
    assert undocumented(documented, section, keys) == []
    undocumented_value = [line for line in documented if new.doc not in line]
    assert undocumented(undocumented_value, section, keys) == [
        f"{section} key 'new_key' lacks the comment '# {new.doc}' above it"
    ]


def test_example_loads_and_its_token_source_works() -> None:
    """The example loads without errors and reads its token from the env var it names."""
    config = load_config(EXAMPLE, env={"AIHUB_TOKEN": SECRET})
    assert not [i for i in config.warnings if i.severity == "error"]
    assert config.hub.read_token({"AIHUB_TOKEN": SECRET}) == SECRET


def _plain(value: Any) -> Any:
    """A field default as the table writes it: a nested dataclass (upload) as its mapping."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _field_defaults(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = _plain(f.default)
        elif f.default_factory is not MISSING:
            out[f.name] = _plain(f.default_factory())
    return out


def test_dataclass_fields_are_the_table_keys() -> None:
    """HubConfig and Rule have one field per table key, and their defaults are the table's."""
    for cls, specs in (
        (HubConfig, HUB_KEYS),
        (Rule, RULE_KEYS),
        (UploadSettings, UPLOAD_KEYS),
        (StateSettings, STATE_KEYS),
        (MetricsSettings, METRICS_KEYS),
    ):
        assert [f.name for f in fields(cls)] == [s.name for s in specs], cls.__name__
        assert _field_defaults(cls) == {s.name: s.default for s in specs if not s.required}
    # Config: `defaults` is merged into the rules; path and warnings are not keys.
    names = {s.name for s in TOP_KEYS} - {"defaults"} | {"path", "warnings"}
    assert {f.name for f in fields(Config)} == names
    # state_dir has no dataclass default: the parser resolves it ($STATE_DIRECTORY, the table).
    top_defaults = {
        s.name: s.default for s in TOP_KEYS if s.kind != "section" and s.name != "state_dir"
    }
    assert _field_defaults(Config) == {**top_defaults, "warnings": ()}


def test_dataclass_defaults_match_the_key_table() -> None:
    """Rule and HubConfig defaults equal the table's defaults (the table is the one truth)."""
    rule = Rule(name="r", watch=Path("/w"), deployment_id="d")
    for spec in RULE_KEYS:
        if not spec.required:
            expected = spec.default
            actual = getattr(rule, spec.name)
            if spec.name in ("settings", "results_options"):
                actual = dict(actual)
            actual = _plain(actual)
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
