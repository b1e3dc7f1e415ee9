"""`explain`: why a path's drop has or has not run. The app builds the answer; this prints it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.cli.args import config_arg
from watcher.cli.exits import EXIT_FAILURE, EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from watcher.app.explain import Explanation

# Verdict -> exit code: 0 ready or submitted (or later), 1 not yet ready, 2 no rule or no drop.
VERDICT_EXITS = {
    "ready": EXIT_OK,
    "submitted": EXIT_OK,
    "waiting": EXIT_FAILURE,
    "no_rule": EXIT_INVALID,
    "no_drop": EXIT_INVALID,
}
VERDICT_TEXT = {
    "ready": "yes",
    "submitted": "submitted",
    "waiting": "no",
    "no_rule": "-",
    "no_drop": "-",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="which rule and drop a path belongs to, the request it would send, and why it "
        "has not run yet",
    )
    config_arg(p)
    p.add_argument("path", type=Path, help="a drop folder, a file in one, or a loose file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--no-remote",
        action="store_true",
        help="skip the remote check (no request to AI Hub); the remote copy is reported unchecked",
    )
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from watcher.app.explain import explain
    from watcher.app.hubclient import build_client
    from watcher.config import load_config

    config = load_config(args.config)

    def client() -> Any:
        return build_client(config.hub, config.hub.read_token())

    result = explain(config, args.path, client=None if args.no_remote else client)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        # A name read from disk may hold undecodable bytes: print them as \\xNN, never crash.
        text = render(result).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        print(text)
    return VERDICT_EXITS[result.verdict]


def render(e: Explanation) -> str:
    """Short labelled lines: rule, drop, request, ready (and why not), ledger."""
    lines: list[tuple[str, str]] = [("path", e.path)]
    if e.rule is None:
        lines.append(("rule", f"none: {e.reason}"))
        return _aligned(lines)
    lines.append(("rule", f"{e.rule} (watch {e.watch}, drop: {e.mode}, source: {e.source})"))
    if e.drop is None and e.verdict == "waiting":
        lines.append(("drop", "none yet: in progress, a drop once renamed"))
    elif e.drop is None:
        lines.append(("drop", f"none: {e.reason}"))
    else:
        lines.append(("drop", _drop_text(e)))
        if e.reason:
            lines.append(("why", e.reason))
    if e.note:
        lines.append(("note", e.note))
    if e.request is not None:
        req = e.request
        lines.append(("request", f"{req['method']} {req['path']}"))
        lines.append(("body", json.dumps(req["body"], ensure_ascii=False)))
    if e.upload is not None:
        lines += _upload_lines(e.upload)
    if e.request_note:
        lines.append(("", e.request_note))
    if e.verdict not in ("no_rule", "no_drop") or e.blockers:
        lines.append(("ready", VERDICT_TEXT[e.verdict]))
        lines += [("", f"- {b.message}") for b in e.blockers]
    lines += _ledger_lines(e)
    return _aligned(lines)


def _drop_text(e: Explanation) -> str:
    text = f"{e.drop} ({e.drop_kind}: {e.drop_path}"
    if e.files is not None:
        text += f", {e.files} files, {e.bytes} B"
    return text + ")"


def _upload_lines(plan: dict[str, Any]) -> list[tuple[str, str]]:
    workspace = plan["workspace"] or "personal workspace"
    lines = [
        (
            "upload",
            f"batch {plan['batch_name']!r} in {workspace}: {plan['file_count']} files, "
            f"{plan['bytes']} B",
        )
    ]
    for f in plan["files"][:20]:
        how = "" if f["parts"] == 1 else f", {f['parts']} parts"
        lines.append(("", f"{f['rel']} → {f['name']} ({f['size']} B{how})"))
    if len(plan["files"]) > 20:
        lines.append(("", f"... and {len(plan['files']) - 20} more"))
    if plan["problem"]:
        lines.append(("", f"rejected before upload: {plan['problem']}"))
    return lines


def _ledger_lines(e: Explanation) -> list[tuple[str, str]]:
    if e.ledger is None:
        return [("ledger", e.ledger_note or "not seen yet")] if e.drop is not None else []
    row = e.ledger
    archived = ", archived" if row.archived else ""
    lines = [("ledger", f"{row.state} (drop {row.drop_id}, attempts {row.attempts}{archived})")]
    if row.run_id is not None:
        lines.append(("run", f"{row.run_id} ({row.run_status or 'status unknown'})"))
    if row.last_error:
        lines.append(("error", row.last_error))
    return lines


def _aligned(lines: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label:<{width}}  {text}".rstrip() for label, text in lines)
