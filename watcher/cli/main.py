"""The entry point: the parser built from each command module, and failures mapped to exits.

The only place that maps exceptions to stderr and exit codes (`watcher.cli.exits`). Heavy modules
are imported inside each command so `--help`, `check` and `status` start fast and never load the
simulator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from watcher import __version__
from watcher.cli import config_cmds, daemon_cmds, drops, explain, ledger_cmds, status
from watcher.cli.exits import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, exit_code_for
from watcher.errors import ConfigError, WatcherError

__all__ = ["EXIT_FAILURE", "EXIT_INVALID", "EXIT_OK", "build_parser", "exit_code_for", "main"]

# In the order `--help` lists them.
COMMANDS = (
    daemon_cmds.register_run,
    config_cmds.register,
    status.register,
    explain.register,
    drops.register,
    ledger_cmds.register,
    daemon_cmds.register_demo,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aihub-watcher",
        description="Watch local folders and turn completed drops into Instabase AI Hub runs.",
    )
    parser.add_argument("--version", action="version", version=f"aihub-watcher {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return exit_code_for(exc)
    except WatcherError as exc:
        print(f"aihub-watcher: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return EXIT_OK
