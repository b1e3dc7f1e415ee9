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
        ("source", lambda d: d["rules"][0].update(source="uplod")),
        ("verify_remote", lambda d: d["rules"][0].update(verify_remote="yes please")),
        ("upload_key", lambda d: d["rules"][2]["upload"].update(delete_batches=True)),
        ("upload_size", lambda d: d["rules"][2]["upload"].update(part_size_bytes=100)),
        ("upload_int", lambda d: d["rules"][2]["upload"].update(max_file_bytes=1.5)),
        ("results_flag", lambda d: d["rules"][0]["results_options"].update(file_offset=1)),
        ("results_bool", lambda d: d["rules"][0]["results_options"].update(include_source_info=1)),
        ("drive_without_remote_dir", lambda d: d["rules"][0].pop("remote_dir")),
        ("upload_rule_as_drive", lambda d: d["rules"][2].pop("source")),
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


def _example() -> dict:
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert [r.get("source") for r in document["rules"]] == ["drive", None, "upload"]
    return document


def test_schema_requires_remote_dir_only_for_drive_rules() -> None:
    """remote_dir is required by source: drive (own, inherited or the default), as `check` does."""
    validator = jsonschema.Draft202012Validator(json_schema())
    document = _example()
    document["defaults"]["source"] = "upload"
    assert list(validator.iter_errors(document)) == []  # every drive rule has its remote_dir
    document["rules"][1].pop("remote_dir")  # claims now inherits source: upload
    assert list(validator.iter_errors(document)) == []
    document["rules"][0].pop("remote_dir")  # invoices still says source: drive
    assert list(validator.iter_errors(document))
    document["defaults"]["remote_dir"] = "acme/shared"
    assert list(validator.iter_errors(document)) == []
    document["defaults"]["source"] = "drive"
    document["rules"][2]["source"] = "drive"  # scans, with remote_dir from defaults
    assert list(validator.iter_errors(document)) == []


def test_schema_describes_the_new_keys_with_their_defaults() -> None:
    """The rule schema carries the new keys, their docs and defaults (upload's sub-keys too)."""
    rule = json_schema()["$defs"]["rule"]["properties"]
    assert rule["source"]["anyOf"][0] == {"enum": ["drive", "upload"]}
    assert rule["source"]["default"] == "drive"
    assert rule["verify_remote"]["anyOf"][0] == {"type": "boolean"}
    upload = rule["upload"]
    assert upload["additionalProperties"] is False
    assert upload["properties"]["delete_batch"]["default"] is True
    assert upload["properties"]["single_put_max_bytes"]["default"] == 10 * 1024 * 1024
    assert rule["upload"]["default"]["max_file_bytes"] == 50 * 1024 * 1024
    assert set(rule["results_options"]["properties"]) == {
        "include_review_results",
        "include_confidence_scores",
        "include_validation_results",
        "include_source_info",
    }
