"""Completed-drop detection: observer hints + directory scans -> one `ReadyDrop` per complete drop.

`Detector` owns a `RuleWatcher` per rule (folders.py: folder drops, batches.py: files mode).
Service layer: imports `watcher.fs`, config and model; never the pipeline, ledger or hub.
"""

from __future__ import annotations

from watcher.detect.detector import Detector

__all__ = ["Detector"]
