"""The paths of a drop: its AI Hub `input_dir` and rendered `output_dir`, and the local file its
results are saved to.

Core: imports only the stdlib, this package and `watcher.names`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from watcher.config.model import Rule
from watcher.config.templates import render_template, rendered_name_problem

__all__ = [
    "RESULTS_SUFFIX",
    "clean_drop",
    "input_dir_for",
    "output_dir_for",
    "rendered_name_problem",
    "results_path_for",
]

RESULTS_SUFFIX = ".json"


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
        ValueError: the drop is empty, absolute, or has a '..' segment; or the rule has no
            remote_dir (source: upload, whose drops have a batch instead).
    """
    if rule.remote_dir is None:
        raise ValueError(f"rule {rule.name!r} has no remote_dir (source: {rule.source})")
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


def results_path_for(rule: Rule, drop: str, *, now: datetime) -> Path | None:
    """The local file a drop's results are saved to, or None when the rule sets no results_dir.

    It is `<results_dir rendered for the drop>/<drop>.json`. A nested drop keeps its sub-folders
    (`2024/03/batch1` -> `<dir>/2024/03/batch1.json`), as under `watch`: flattening could make
    two drops collide. Repeated or trailing slashes collapse; no segment can be '..', so the
    file never leaves the rendered folder.

    Raises:
        ValueError: the drop is empty, absolute, or has a '..' segment, or a rendered segment
            is unusable (e.g. `{drop:.2}` rendering "..").
    """
    if rule.results_dir is None:
        return None
    cleaned = clean_drop(drop)
    rendered = render_template(
        rule.results_dir,
        rule=rule.name,
        drop=cleaned,
        deployment_id=rule.deployment_id,
        now=now,
    )
    segments = [s for s in rendered.split("/") if s]
    if not rendered.startswith("/"):
        raise ValueError(f"results_dir {rule.results_dir!r} renders to a relative path")
    for segment in segments:  # clean_drop already vouched for the drop's own segments
        problem = rendered_name_problem(segment)
        if problem is not None:
            raise ValueError(f"results_dir {rule.results_dir!r} for drop {cleaned!r}: {problem}")
    return Path("/", *segments, cleaned + RESULTS_SUFFIX)
