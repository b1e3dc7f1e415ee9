"""${VAR} expansion of config strings."""

from __future__ import annotations

import pytest

from watcher.config import expand_env


@pytest.mark.parametrize(
    ("text", "expected", "errors"),
    [
        ("plain", "plain", []),
        ("${A}", "alpha", []),
        ("x-${A}-y", "x-alpha-y", []),
        ("${MISSING:-dflt}", "dflt", []),
        ("${EMPTY:-dflt}", "dflt", []),
        ("${EMPTY}", "", []),
        ("${A:-dflt}", "alpha", []),
        ("${MISSING:-}", "", []),
        ("$$", "$", []),
        ("$${A}", "${A}", []),
        ("cost $5", "cost $5", []),
        ("${MISSING}", "", ["environment variable MISSING is not set"]),
        ("${A", "", ["unterminated '${'"]),
        ("${not valid}", "", ["bad variable reference '${not valid}'"]),
    ],
)
def test_expand_env(text: str, expected: str, errors: list[str]) -> None:
    """${VAR}, ${VAR:-default} (unset or empty), $$ escapes, and errors for unset or bad syntax."""
    value, problems = expand_env(text, {"A": "alpha", "EMPTY": ""})
    assert len(problems) == len(errors)
    for problem, fragment in zip(problems, errors, strict=True):
        assert fragment in problem
    if not errors:
        assert value == expected
