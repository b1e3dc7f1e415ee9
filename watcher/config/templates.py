"""The template grammar of output_dir and batch_name: parse, validate, render.

Core: imports only the stdlib. Validation and rendering share this one grammar.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from typing import Final

__all__ = [
    "DEFAULT_DATE_FORMAT",
    "SEQ_FIELD",
    "TEMPLATE_FIELDS",
    "TemplatePart",
    "parse_template",
    "render_sample",
    "render_template",
    "template_errors",
]

TEMPLATE_FIELDS: Final = ("rule", "drop", "date", "deployment_id")
SEQ_FIELD: Final = "seq"
DEFAULT_DATE_FORMAT: Final = "%Y-%m-%d"
_SAMPLE_NOW: Final = datetime(2001, 2, 3, 4, 5, 6)  # only probes strftime formats


@dataclass(frozen=True, slots=True)
class TemplatePart:
    """Literal text followed by an optional placeholder (`field` None at the end)."""

    literal: str
    field: str | None
    spec: str


def parse_template(
    template: str, *, allow_seq: bool = False
) -> tuple[tuple[TemplatePart, ...], tuple[str, ...]]:
    """Split a template into parts; the second item lists every problem (empty when valid).

    A template with no problems renders without raising for any rule, drop, deployment and time.
    """
    allowed = (*TEMPLATE_FIELDS, SEQ_FIELD) if allow_seq else TEMPLATE_FIELDS
    listing = ", ".join(
        ["{rule}", "{drop}", "{date}", "{date:%Y-%m-%d}", "{deployment_id}"]
        + (["{seq}"] if allow_seq else [])
    )
    try:
        raw = list(string.Formatter().parse(template))
    except ValueError as exc:
        return (), (f"bad template: {exc}; write '{{{{' or '}}}}' for a literal brace",)
    parts: list[TemplatePart] = []
    errors: list[str] = []
    for literal, name, raw_spec, conversion in raw:
        if name is None:
            parts.append(TemplatePart(literal, None, ""))
            continue
        spec = raw_spec or ""
        if conversion is not None:
            errors.append(f"conversions like '!{conversion}' are not supported in '{{{name}}}'")
            continue
        if name == SEQ_FIELD and not allow_seq:
            errors.append("'{seq}' is only available in batch_name")
            continue
        if name not in allowed:
            shown = "{" + name + (":" + spec if spec else "") + "}"
            errors.append(f"unknown placeholder '{shown}'; use {listing}")
            continue
        if "{" in spec or "}" in spec:
            errors.append(f"nested placeholders are not allowed in '{{{name}:{spec}}}'")
            continue
        problem = _format_problem(name, spec)
        if problem:
            errors.append(problem)
            continue
        parts.append(TemplatePart(literal, name, spec))
    return tuple(parts), tuple(errors)


def _format_problem(name: str, spec: str) -> str | None:
    # Probe the format once here, so that rendering a valid template can never raise.
    try:
        if name == "date":
            _SAMPLE_NOW.strftime(spec or DEFAULT_DATE_FORMAT)
        elif name == SEQ_FIELD:
            format(1, spec)
        else:
            format("x", spec)
    except ValueError as exc:
        return f"bad format in '{{{name}:{spec}}}': {exc}"
    return None


def template_errors(template: str, *, allow_seq: bool = False) -> list[str]:
    """Every problem with a template (unknown placeholders, bad formats); empty when valid."""
    return list(parse_template(template, allow_seq=allow_seq)[1])


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


def render_sample(template: str) -> str:
    """A valid template rendered with sample values, to check the shape of what it yields."""
    return render_template(
        template, rule="rule", drop="drop", deployment_id="deployment", now=_SAMPLE_NOW, seq=1
    )
