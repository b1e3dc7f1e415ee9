"""json_schema(): valid draft 2020-12, accepts the example, rejects what the parser rejects."""

from __future__ import annotations

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tests.unit.config_helpers import EXAMPLE
from watcher.config import json_schema


def test_schema_is_valid_and_accepts_the_example() -> None:
    """json_schema() is valid draft 2020-12 and accepts the example parsed as plain YAML."""
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(document)) == []


@pytest.mark.parametrize(
    ("where", "mutation"),
    [
        ("top", lambda d: d.update(colour="blue")),
        ("hub", lambda d: d["hub"].update(max_concurency=4)),
        ("rule", lambda d: d["rules"][0].update(settle_second=3)),
        ("settings", lambda d: d["rules"][0]["settings"].update(tag=["x"])),
        ("enum", lambda d: d["rules"][0].update(drop="folders")),
        ("range", lambda d: d["hub"].update(max_concurrency=65)),
        ("required", lambda d: d["rules"][0].pop("deployment_id")),
        ("empty_rules", lambda d: d.update(rules=[])),
        ("defaults_name", lambda d: d["defaults"].update(name="x")),
    ],
)
def test_schema_rejects_mistakes(where: str, mutation) -> None:
    """The schema rejects unknown keys (additionalProperties: false), bad enums and ranges."""
    validator = jsonschema.Draft202012Validator(json_schema())
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    mutation(document)
    assert list(validator.iter_errors(document)), where


def test_schema_lets_defaults_supply_required_rule_keys() -> None:
    """A rule may leave out deployment_id when defaults has it, as the validator allows."""
    validator = jsonschema.Draft202012Validator(json_schema())
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for rule in document["rules"]:
        rule.pop("deployment_id")
    assert list(validator.iter_errors(document))
    document["defaults"]["deployment_id"] = "dep"
    assert list(validator.iter_errors(document)) == []


def test_schema_allows_env_references_in_typed_fields() -> None:
    """A `${VAR:-4}` where a number goes passes the schema (it expands when loading)."""
    validator = jsonschema.Draft202012Validator(json_schema())
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    document["hub"]["max_concurrency"] = "${AIHUB_CONCURRENCY:-4}"
    assert list(validator.iter_errors(document)) == []
