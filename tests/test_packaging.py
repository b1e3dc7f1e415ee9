"""What `pip install .` (the README's demo command) installs: every part of the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_every_subpackage(tmp_path: Path):
    """A non-editable install must not leave out watcher.app, watcher.pipeline, ... ."""
    # Build from a clean copy: a stale build/ in the checkout could hide a missing package.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "watcher", src / "watcher", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("aihub_watcher-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n for n in zf.namelist() if n.startswith("watcher/")}
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "watcher").rglob("*.py")}
    assert source - shipped == set()
