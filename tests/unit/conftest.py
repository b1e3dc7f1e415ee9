"""Fixtures of the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Real folders the rules can watch: a, a/sub, b, and a plain file."""
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "ca.pem").write_text("pem")
    return tmp_path
