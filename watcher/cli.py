"""Command line: argparse subcommands, printing, and the one table of exit codes.

The only module that maps exceptions to stderr and exit codes. Heavy modules are imported inside
each command so `--help`, `check` and `status` start fast and never load the simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from watcher import __version__
from watcher.errors import ConfigError, LedgerError, StartupError, TokenError, WatcherError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2

# The one table of exit codes: what each failure means for the process (first match wins).
# EXIT_INVALID: nothing will change until the operator fixes the setup (systemd's
# RestartPreventExitStatus=2 keeps it from restarting in a loop); EXIT_FAILURE: worth a restart.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, EXIT_INVALID),
    (TokenError, EXIT_INVALID),
    (StartupError, EXIT_INVALID),
    (LedgerError, EXIT_FAILURE),
    (Exception, EXIT_FAILURE),
)


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for a failure, from `EXIT_CODES`."""
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))


DEFAULT_CONFIG = "/etc/aihub-watcher/config.yaml"


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("AIHUB_WATCHER_CONFIG", DEFAULT_CONFIG)),
        help=f"config file (default: $AIHUB_WATCHER_CONFIG or {DEFAULT_CONFIG})",
    )


def _log_args(parser: argparse.ArgumentParser) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aihub-watcher",
        description="Watch local folders and turn completed drops into Instabase AI Hub runs.",
    )
    parser.add_argument("--version", action="version", version=f"aihub-watcher {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the daemon (systemd: Type=notify)")
    _config_arg(p)
    _log_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="validate a config file; print every problem at once")
    _config_arg(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("schema", help="print the config's JSON Schema (for editors)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("status", help="show every drop the ledger knows, and counts per state")
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--state", action="append", help="only drops in this state (repeatable)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("retry", help="re-arm a failed or rejected drop for submission")
    _config_arg(p)
    p.add_argument("drop_id", metavar="DROP_ID")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("demo", help="simulator + watcher on a temporary folder with sample drops")
    p.add_argument("--once", action="store_true", help="exit after the sample drops are done")
    p.add_argument("--dir", type=Path, help="demo folder (default: a new temporary folder)")
    _log_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("hub-sim", help="run the loopback AI Hub simulator")
    # Only the flags' module: the simulator itself loads when hub-sim runs.
    from watcher.sim.options import add_arguments as add_sim_arguments

    add_sim_arguments(p)
    p.set_defaults(func=cmd_hub_sim)
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


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_status(args: argparse.Namespace) -> int:
    from watcher.config import load_config
    from watcher.ledger import Ledger, ledger_path

    config = load_config(args.config)
    ledger = Ledger.open_readonly(ledger_path(config.state_dir))
    try:
        drops = ledger.all_drops()
        counts = ledger.counts()
    finally:
        ledger.close()
    if args.state:
        drops = [d for d in drops if d.state in set(args.state)]
    now = time.time()
    if args.json:
        out = {
            "counts": counts,
            "drops": [
                {
                    "id": d.id,
                    "rule": d.rule,
                    "drop": d.drop,
                    "state": str(d.state),
                    "run_id": d.run_id,
                    "run_status": d.run_status,
                    "attempts": d.attempts,
                    "age_seconds": round(now - d.created_at, 3),
                    "last_error": d.last_error,
                    "input_dir": d.input_dir,
                    "batch_id": d.batch_id,
                    "results": d.results_state,
                    "results_path": d.results_path,
                    "results_error": d.results_error,
                }
                for d in drops
            ],
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    header = ("DROP_ID", "RULE", "DROP", "STATE", "RUN_ID", "RUN_STATUS", "AGE", "LAST_ERROR")
    rows = [
        (
            d.id,
            d.rule,
            d.drop.replace("\n", "\\n"),
            str(d.state),
            d.run_id or "-",
            d.run_status or "-",
            _age(now - d.created_at),
            _reason(d).replace("\n", " ")[:80],
        )
        for d in drops
    ]
    print(_table(header, rows))
    print()
    print("  ".join(f"{state}={n}" for state, n in sorted(counts.items())) or "no drops yet")
    return EXIT_OK


def _reason(d: Any) -> str:
    """What `status` says about a drop: its last error, or why its results are not saved."""
    if d.results_state == "pending" and d.results_error:
        return f"results not saved ({d.results_attempts} tries): {d.results_error}"
    return str(d.last_error or "-")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header]]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_retry(args: argparse.Namespace) -> int:
    from watcher.config import load_config
    from watcher.ledger import Ledger, ledger_path
    from watcher.model import DropState
    from watcher.pipeline.intake import first_stage

    config = load_config(args.config)
    ledger = Ledger(ledger_path(config.state_dir))
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
        args.config, log_format=args.log_format, log_level=args.log_level, force_exit=_force_exit
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
