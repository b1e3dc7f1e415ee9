"""`ledger migrate`: commands on the ledger as a whole."""

from __future__ import annotations

import argparse
from typing import Any

from watcher.cli.args import config_arg
from watcher.cli.exits import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("ledger", help="move the ledger to another backend")
    cmds = p.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")
    m = cmds.add_parser(
        "migrate",
        help="copy the SQLite ledger of state_dir into an empty PostgreSQL database",
        description=(
            "Copy every drop of the SQLite ledger in state_dir (runs, attempts, archived rows) "
            "into the ledger at DSN, which must hold no drops. Stop the daemon first. Then set "
            "state: {backend: postgresql, dsn: DSN} and start it: it posts nothing again. "
            "A password can come from $PGPASSWORD or ~/.pgpass instead of the DSN."
        ),
    )
    config_arg(m)
    m.add_argument("--to", required=True, metavar="DSN", help="postgresql://user@host/db")
    m.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from watcher.app.migrate import migrate_to_postgres
    from watcher.config import load_config

    config = load_config(args.config)
    done = migrate_to_postgres(config, args.to)
    print(
        f"copied {done.drops} drops ({done.files} files) from {done.source} to {done.target}\n"
        "next: set state: {backend: postgresql, dsn: ...} in the config and start the daemon"
    )
    return EXIT_OK
