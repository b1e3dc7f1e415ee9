"""`run`, `demo` and `hub-sim`: the commands that keep running until stopped."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watcher.cli.args import config_arg, log_args
from watcher.cli.exits import EXIT_FAILURE, EXIT_OK, exit_code_for


def register_run(sub: Any) -> None:
    p = sub.add_parser("run", help="run the daemon (systemd: Type=notify)")
    config_arg(p)
    log_args(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="detect drops and log each request (run.dry_run) instead of sending it; "
        "sends nothing to AI Hub and writes nothing to the ledger",
    )
    p.set_defaults(func=cmd_run)


def register_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="simulator + watcher on a temporary folder with sample drops")
    p.add_argument("--once", action="store_true", help="exit after the sample drops are done")
    p.add_argument("--dir", type=Path, help="demo folder (default: a new temporary folder)")
    log_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("hub-sim", help="run the loopback AI Hub simulator")
    # Only the flags' module: the simulator itself loads when hub-sim runs.
    from watcher.sim.options import add_arguments as add_sim_arguments

    add_sim_arguments(p)
    p.set_defaults(func=cmd_hub_sim)


def _force_exit() -> None:
    """A second SIGTERM/SIGINT while stopping: leave now, in-flight requests or not."""
    sys.stdout.flush()
    os._exit(EXIT_FAILURE)


def _run_daemon(start: Callable[[], Any]) -> int:
    """Run the daemon (or the demo); its failures were already logged as structured events."""
    try:
        daemon = start()
    except Exception as exc:
        return exit_code_for(exc)
    if daemon is not None and daemon.in_flight_left:
        # HTTP calls still blocked in worker threads past shutdown_timeout: their drops are
        # `submitting` in the ledger and are reconciled at the next start. Do not let the
        # interpreter wait for their sockets to time out.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from watcher.app.daemon import Daemon

    daemon = Daemon(
        args.config,
        log_format=args.log_format,
        log_level=args.log_level,
        force_exit=_force_exit,
        dry_run=args.dry_run,
    )

    def start() -> Daemon:
        daemon.run()
        return daemon

    return _run_daemon(start)


def cmd_demo(args: argparse.Namespace) -> int:
    from watcher.app.demo import run_demo

    return _run_daemon(
        lambda: run_demo(
            once=args.once,
            folder=args.dir,
            log_format=args.log_format,
            log_level=args.log_level,
            force_exit=_force_exit,
        )
    )


def cmd_hub_sim(args: argparse.Namespace) -> int:
    from watcher import sim

    return sim.run_forever(sim.options_from_args(args))
