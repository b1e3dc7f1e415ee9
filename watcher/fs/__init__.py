"""The filesystem adapter: watchdog observers, hints, scans, batch folders, settle and grouping.

The only watchdog user. Imports only the core (`watcher.config`, `watcher.model`, `watcher.errors`);
never `detect`, the pipeline, the ledger or the hub. Import the submodule you need (this package
imports nothing itself, so the pure modules never load watchdog).
"""
