"""Names in AI Hub for an uploaded drop: its batch, and each file flattened into the batch.

A batch holds files, not folders, so a nested file `scans/2026/a.pdf` is uploaded as
`scans__2026__a.pdf`. Two files that would get the same name (or names differing only in
case) reject the drop before anything is uploaded. Pure: imports only the core.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

SEPARATOR: Final = "__"
MAX_NAME = 255


def remote_name(rel: str) -> str:
    """The batch file name of a file at `rel` (a POSIX path inside the drop)."""
    return SEPARATOR.join(rel.split("/"))


def naming_problem(rels: Iterable[str]) -> str | None:
    """Why the files of a drop cannot be named in one batch, or None."""
    taken: dict[str, str] = {}
    for rel in rels:
        name = remote_name(rel)
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
            return f"{rel!r} would be uploaded as a name longer than {MAX_NAME} bytes"
        key = name.casefold()
        if key in taken:
            return (
                f"{taken[key]!r} and {rel!r} would both be uploaded as {name!r}: rename one of them"
            )
        taken[key] = rel
    return None


def batch_name(rule: str, drop: str, drop_id: str) -> str:
    """`<rule>-<drop>-<drop id>`, flattened and cut to fit the API's 255 characters."""
    tail = f"-{drop_id}"
    head = f"{rule}-{remote_name(drop)}"
    return head[: MAX_NAME - len(tail)] + tail
