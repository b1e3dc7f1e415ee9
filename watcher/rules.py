"""Rule logic on top of the config: drop paths, `input_dir`, and template rendering.

Pure: imports only the stdlib and `watcher.config` (never an adapter, the ledger or the hub client).
"""

from __future__ import annotations

from datetime import datetime

from watcher.config import DEFAULT_DATE_FORMAT, SEQ_FIELD, Rule, parse_template, template_errors

__all__ = [
    "clean_drop",
    "input_dir_for",
    "output_dir_for",
    "render_template",
    "template_errors",
]


def clean_drop(drop: str) -> str:
    """Normalise a drop (POSIX path relative to `watch`): no empty or '.' segments, no trailing '/'.

    Raises:
        ValueError: the drop is empty, absolute, or has a '..' segment.
    """
    if drop.startswith("/"):
        raise ValueError(f"drop must be relative to the watched folder, got {drop!r}")
    segments = [s for s in drop.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise ValueError(f"drop must not contain '..' segments, got {drop!r}")
    if not segments:
        raise ValueError(f"drop must name something inside the watched folder, got {drop!r}")
    return "/".join(segments)


def input_dir_for(rule: Rule, drop: str) -> str:
    """The AI Hub `input_dir` of a drop: `remote_dir` + "/" + drop (never `//`, never `..`).

    Raises:
        ValueError: the drop is empty, absolute, or has a '..' segment.
    """
    base = rule.remote_dir.rstrip("/")
    return f"{base}/{clean_drop(drop)}"


def render_template(
    template: str,
    *,
    rule: str,
    drop: str,
    deployment_id: str,
    now: datetime,
    seq: int | None = None,
) -> str:
    """Fill {rule}, {drop}, {date}/{date:<strftime>}, {deployment_id} and {seq}.

    Values are inserted as text, never re-parsed, so a `{` in a drop name is harmless. A template
    that passed validation never raises here (validation probes the same formats).

    Raises:
        ValueError: the template is invalid, or uses {seq} and `seq` is None (caller bugs).
    """
    parts, errors = parse_template(template, allow_seq=True)
    if errors:
        raise ValueError(f"invalid template {template!r}: {errors[0]}")
    values = {"rule": rule, "drop": drop, "deployment_id": deployment_id}
    out: list[str] = []
    for part in parts:
        out.append(part.literal)
        if part.field is None:
            continue
        if part.field == "date":
            out.append(now.strftime(part.spec or DEFAULT_DATE_FORMAT))
        elif part.field == SEQ_FIELD:
            if seq is None:
                raise ValueError(f"template {template!r} uses {{seq}} but no seq was given")
            out.append(format(seq, part.spec))
        else:
            out.append(format(values[part.field], part.spec))
    return "".join(out)


def output_dir_for(rule: Rule, drop: str, *, now: datetime) -> str | None:
    """The rendered `output_dir` for a drop, or None when the rule sets none.

    Repeated or trailing slashes from the template are collapsed, so the result is a clean path.

    Raises:
        ValueError: the drop is empty, absolute, or has a '..' segment.
    """
    if rule.output_dir is None:
        return None
    rendered = render_template(
        rule.output_dir,
        rule=rule.name,
        drop=clean_drop(drop),
        deployment_id=rule.deployment_id,
        now=now,
    )
    return "/".join(s for s in rendered.split("/") if s)
