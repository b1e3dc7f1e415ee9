"""The simulator's boundaries: it imports nothing else from watcher, and the CLI loads it lazily."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.sim_helpers import PROJECT_ROOT

SIM_DIR = PROJECT_ROOT / "watcher" / "sim"


def test_simulator_imports_nothing_else_from_watcher():
    """Every watcher import inside watcher/sim is a watcher.sim import, so hub/ can't leak in."""
    outside = []
    for path in sorted(SIM_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            else:
                continue
            outside += [
                f"{path.name}: {n}"
                for n in names
                if (n == "watcher" or n.startswith("watcher.")) and not n.startswith("watcher.sim")
            ]
    assert outside == []


def test_cli_parser_does_not_load_the_simulator():
    """Building the CLI parser (as check and status do) loads the hub-sim flags, not the server."""
    code = (
        "import sys, watcher.cli\n"
        "watcher.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.startswith('watcher.sim') or m == 'h11'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True
    ).stdout
    assert out.strip() == "['watcher.sim', 'watcher.sim.options']"
