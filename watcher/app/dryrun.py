"""`run --dry-run`: the dry-run pipeline, told which drops the real ledger already knows.

The real ledger is only read (never created, never written); a missing or unreadable one means
"nothing known". Imports config, the ledger and the pipeline.
"""

from __future__ import annotations

import structlog

from watcher.app.ledgers import no_ledger_yet, open_ledger
from watcher.config import Config
from watcher.errors import LedgerError
from watcher.hub.client import HubClient
from watcher.pipeline.dryrun import DryRunPipeline

log = structlog.get_logger("watcher.daemon")


def open_dry_run(config: Config, client: HubClient) -> DryRunPipeline:
    """A dry-run pipeline on a scratch ledger that skips what the real daemon already recorded."""
    return DryRunPipeline.in_scratch_dir(config=config, client=client, known=known_drops(config))


def known_drops(config: Config) -> set[tuple[str, str]]:
    """(rule, drop) of every live row of the real ledger, read-only; empty when there is none."""
    if no_ledger_yet(config):
        return set()
    try:
        ledger = open_ledger(config, readonly=True)
    except LedgerError as exc:
        log.warning("dry_run.ledger_unreadable", error=str(exc), hint="every drop counts as new")
        return set()
    try:
        return {(d.rule, d.drop) for d in ledger.active_drops()}
    finally:
        ledger.close()
