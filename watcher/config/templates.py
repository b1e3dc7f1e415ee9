"""The template grammar of output_dir, batch_name and results_dir: parse, validate, render.

Core: imports only the stdlib and `watcher.names`. Validation and rendering share this grammar.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from watcher.names import is_in_progress

__all__ = [
    "DEFAULT_DATE_FORMAT",
    "RESULTS_FIELDS",
    "SEQ_FIELD",
    "TEMPLATE_FIELDS",
    "TemplatePart",
    "fixed_prefix",
    "parse_template",
    "render_sample",
    "render_template",
    "rendered_name_problem",
    "template_errors",
]

TEMPLATE_FIELDS: Final = ("rule", "drop", "date", "deployment_id")
RESULTS_FIELDS: Final = ("rule", "drop", "date")  # results_dir: a local path, no deployment_id
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
    template: str, *, allow_seq: bool = False, fields: tuple[str, ...] = TEMPLATE_FIELDS
) -> tuple[tuple[TemplatePart, ...], tuple[str, ...]]:
    """Split a template into parts; the second item lists every problem (empty when valid).

    `fields` are the placeholders the key allows ({seq} too with `allow_seq`). A template with no
    problems renders without raising for any rule, drop, deployment and time.
    """
    allowed = (*fields, SEQ_FIELD) if allow_seq else fields
    forms = {"date": "{date}, {date:%Y-%m-%d}"}
    listing = ", ".join(forms.get(name, "{" + name + "}") for name in allowed)
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


def template_errors(
    template: str, *, allow_seq: bool = False, fields: tuple[str, ...] = TEMPLATE_FIELDS
) -> list[str]:
    """Every problem with a template (unknown placeholders, bad formats); empty when valid."""
    return list(parse_template(template, allow_seq=allow_seq, fields=fields)[1])


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


def fixed_prefix(template: str, known: Mapping[str, str]) -> tuple[str, bool]:
    """What a valid template renders to before its first placeholder not in `known`, and whether
    that is all of it.

    With `known={"rule": name}` this is the part of a rule's results_dir that no drop or date
    changes, which `check` compares with the watched folders.
    """
    out: list[str] = []
    for part in parse_template(template, allow_seq=True)[0]:
        out.append(part.literal)
        if part.field is None:
            continue
        if part.field not in known:
            return "".join(out), False
        out.append(format(known[part.field], part.spec))
    return "".join(out), True


def rendered_name_problem(name: str) -> str | None:
    """Why a rendered path segment or folder name is unusable, or None.

    Templates are checked with sample values by `check`; this is the check at use, with the
    real values (`{drop:.2}` can render "..", `{seq}.tmp` looks like a file still written).
    """
    if not name.strip():
        return "it renders empty"
    if name in (".", ".."):
        return f"{name!r} is not a folder name"
    if "\0" in name:
        return "it contains a NUL character"
    if is_in_progress(name):
        return f"{name!r} looks like a file still being written"
    return None
