"""Completed-drop detection: observer hints + directory scans -> one `ReadyDrop` per complete drop.

Service layer: imports `watcher.fs`, config and model; never the pipeline, ledger or hub.
`Detector` (detector.py) owns a `RuleWatcher` (rule_watcher.py) per rule; folder drops settle in
folders.py, files-mode batches in batches.py, root listings are reconciled in roots.py.
"""

from __future__ import annotations

from watcher.detect.detector import Detector

__all__ = ["Detector"]
