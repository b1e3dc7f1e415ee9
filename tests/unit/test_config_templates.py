"""Templates (output_dir, batch_name): rendering, and validation with the same grammar."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.config_helpers import HEAD, RULE_A, issues_of
from watcher.config import render_template, template_errors

NOW = datetime(2024, 3, 9, 14, 5, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("results/{rule}/{drop}", "results/invoices/2024/batch 1"),
        ("{date}", "2024-03-09"),
        ("{date:%Y/%m/%d-%H%M%S}", "2024/03/09-140507"),
        ("{deployment_id}-{rule}", "dep-1-invoices"),
        ("{{literal}}/{rule}", "{literal}/invoices"),
        ("{rule:>10}", "  invoices"),
        ("b-{seq}", "b-7"),
        ("b-{seq:04d}", "b-0007"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_render_template(template: str, expected: str) -> None:
    """Placeholders fill in; {date} defaults to YYYY-MM-DD; {{ }} are literal braces."""
    assert not template_errors(template, allow_seq=True)
    rendered = render_template(
        template, rule="invoices", drop="2024/batch 1", deployment_id="dep-1", now=NOW, seq=7
    )
    assert rendered == expected


def test_render_template_inserts_values_verbatim() -> None:
    """Braces inside values are not re-parsed, so odd drop names cannot break rendering."""
    rendered = render_template(
        "{drop}/{rule}", rule="r", drop="{date}{0}{", deployment_id="d", now=NOW
    )
    assert rendered == "{date}{0}{/r"


@pytest.mark.parametrize(
    ("template", "allow_seq", "fragment"),
    [
        ("{rulee}", False, "unknown placeholder '{rulee}'"),
        ("{rule.upper}", False, "unknown placeholder '{rule.upper}'"),
        ("{drop[0]}", False, "unknown placeholder '{drop[0]}'"),
        ("{}", False, "unknown placeholder '{}'"),
        ("{0}", False, "unknown placeholder '{0}'"),
        ("{seq}", False, "'{seq}' is only available in batch_name"),
        ("{unknown:%Y}", True, "unknown placeholder '{unknown:%Y}'"),
        ("{rule!r}", False, "conversions like '!r'"),
        ("{date:{rule}}", False, "nested placeholders are not allowed"),
        ("{seq:q}", True, "bad format in '{seq:q}'"),
        ("{rule:d}", False, "bad format in '{rule:d}'"),
        ("{rule", False, "bad template"),
        ("rule}", False, "bad template: Single '}'"),
    ],
)
def test_template_errors(template: str, allow_seq: bool, fragment: str) -> None:
    """Unknown placeholders and bad formats are validation errors; render refuses them."""
    errors = template_errors(template, allow_seq=allow_seq)
    assert any(fragment in e for e in errors), errors
    if template_errors(template, allow_seq=True):  # render also serves batch_name: {seq} is fine
        with pytest.raises(ValueError, match="invalid template"):
            render_template(template, rule="r", drop="d", deployment_id="x", now=NOW, seq=1)


@pytest.mark.parametrize(
    ("key", "template"),
    [
        ("output_dir", "out/{rulee}"),
        ("output_dir", "out/{seq}"),
        ("output_dir", "out/{rule!r}"),
        ("batch_name", "{seq:q}"),
        ("batch_name", "{date:{rule}}"),
    ],
)
def test_config_validation_uses_the_template_grammar(tree: Path, key: str, template: str) -> None:
    """A template that template_errors refuses is refused in the config with the same message."""
    (expected,) = template_errors(template, allow_seq=key == "batch_name")
    issues = issues_of(tree, HEAD + RULE_A + f'    {key}: "{template}"\n')
    assert [(i.key_path, i.message) for i in issues] == [(f"rules[0].{key}", expected)]


def test_render_seq_without_value_is_a_caller_bug() -> None:
    """A {seq} template rendered without a seq raises ValueError."""
    with pytest.raises(ValueError, match="no seq"):
        render_template("{seq}", rule="r", drop="d", deployment_id="x", now=NOW)
