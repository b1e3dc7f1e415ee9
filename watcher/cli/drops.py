"""`retry`: commands that change one drop in the ledger."""

from __future__ import annotations

import argparse
import time
from typing import Any

from watcher.cli.args import config_arg
from watcher.cli.exits import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("retry", help="re-arm a failed or rejected drop for submission")
    config_arg(p)
    p.add_argument("drop_id", metavar="DROP_ID")
    p.set_defaults(func=cmd_retry)


def cmd_retry(args: argparse.Namespace) -> int:
    from watcher.app.ledgers import open_ledger
    from watcher.config import load_config
    from watcher.model import DropState
    from watcher.pipeline.intake import first_stage

    config = load_config(args.config)
    ledger = open_ledger(config)
    try:
        found = ledger.get(args.drop_id)
        rule = next((r for r in config.rules if found and r.name == found.rule), None)
        # Back to its rule's first stage: an upload continues its batch, a drive drop is
        # checked on the remote side again.
        stage = first_stage(rule) if rule is not None else DropState.READY
        drop = ledger.rearm(args.drop_id, now=time.time(), state=stage)
    finally:
        ledger.close()
    print(f"{drop.id}: {drop.rule}/{drop.drop} re-armed ({drop.state}); the daemon takes it next")
    return EXIT_OK
