"""The package stays layered and small: import contracts hold, and no part outgrows its limits."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "watcher"
LIMITS = {"module": 400, "class": 300, "function": 60}
# Named exceptions to the limits, each with its reason. Keep this empty if you can.
EXCEPTIONS: dict[str, str] = {}


def _oversized() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > LIMITS["module"]:
            found.append(f"{rel}: module of {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            kind = (
                "class"
                if isinstance(node, ast.ClassDef)
                else "function"
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                else None
            )
            if kind is None:
                continue
            assert isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            size = (node.end_lineno or node.lineno) - first + 1
            if size > LIMITS[kind]:
                found.append(f"{rel}:{node.lineno}: {kind} {node.name} of {size} lines")
    return [f for f in found if f.split(":")[0] not in EXCEPTIONS]


def test_no_module_class_or_function_outgrows_its_limit():
    """Modules <= 400 lines, classes <= 300, functions <= 60 (exceptions named above)."""
    assert _oversized() == []


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        check=False,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_import_against_the_layers_is_caught(tmp_path: Path):
    """A copy of the package where detect imports pipeline breaks a contract, by name."""
    if not Path(sys.executable).with_name("lint-imports").exists():
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    copy = tmp_path / "watcher"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert _lint_imports(tmp_path).returncode == 0, "the contracts must hold on the real code"
    bad = copy / "detect" / "detector.py"
    bad.write_text(bad.read_text() + "\nimport watcher.pipeline  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "watcher.detect.detector -> watcher.pipeline" in result.stdout
