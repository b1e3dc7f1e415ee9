"""`check` and `schema`: the config file, read without starting anything."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from watcher.cli.args import config_arg
from watcher.cli.exits import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="validate a config file; print every problem at once")
    config_arg(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("schema", help="print the config's JSON Schema (for editors)")
    p.set_defaults(func=cmd_schema)


def cmd_check(args: argparse.Namespace) -> int:
    from watcher.config import load_config, summary_table

    config = load_config(args.config)
    for issue in config.warnings:
        print(issue, file=sys.stderr)
    print(summary_table(config))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from watcher.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK
