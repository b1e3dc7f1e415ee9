"""`${VAR}` and `${VAR:-default}` expansion of config strings.

Core: imports only the stdlib.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["ENV_NAME_RE", "expand_env"]

ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENV_REF_RE: Final = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{))")


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand `${VAR}` and `${VAR:-default}` (default when unset or empty); `$$` is a literal `$`.

    Returns the expanded text and the problems (an unset variable without a default, bad syntax).
    """
    out: list[str] = []
    errors: list[str] = []
    pos = 0
    for m in _ENV_REF_RE.finditer(text):
        out.append(text[pos : m.start()])
        pos = m.end()
        if m.group(1):
            out.append("$")
            continue
        if m.group(3):
            errors.append("unterminated '${'; write '$$' for a literal '$'")
            continue
        body = m.group(2)
        name, sep, default = body.partition(":-")
        if not ENV_NAME_RE.match(name):
            errors.append(
                f"bad variable reference '${{{body}}}': use ${{NAME}} or ${{NAME:-default}}"
                " (write '$$' for a literal '$')"
            )
            continue
        value = env.get(name)
        if sep:
            out.append(value or default)
        elif value is None:
            errors.append(
                f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"
            )
        else:
            out.append(value)
    out.append(text[pos:])
    return "".join(out), errors
