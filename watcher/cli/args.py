"""Arguments several commands share: the config file and the log options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_CONFIG = "/etc/aihub-watcher/config.yaml"


def config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("AIHUB_WATCHER_CONFIG", DEFAULT_CONFIG)),
        help=f"config file (default: $AIHUB_WATCHER_CONFIG or {DEFAULT_CONFIG})",
    )


def log_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default=os.environ.get("AIHUB_WATCHER_LOG_FORMAT", "auto"),
        help="auto: JSON lines when stdout is not a terminal (journald), console on a terminal",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=os.environ.get("AIHUB_WATCHER_LOG_LEVEL"),
        help="overrides the config's log_level (also $AIHUB_WATCHER_LOG_LEVEL)",
    )
