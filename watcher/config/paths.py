"""The AI Hub paths of a drop: its `input_dir`, and its rendered `output_dir`.

Core: imports only the stdlib, this package and `watcher.names`.
"""

from __future__ import annotations

from datetime import datetime

from watcher.config.model import Rule
from watcher.config.templates import render_template
from watcher.names import is_in_progress

__all__ = ["clean_drop", "input_dir_for", "output_dir_for", "rendered_name_problem"]


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
    path = "/".join(s for s in rendered.split("/") if s)
    for segment in path.split("/"):
        problem = rendered_name_problem(segment)
        if problem is not None:
            raise ValueError(f"output_dir {rule.output_dir!r} renders to {path!r}: {problem}")
    return path


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
