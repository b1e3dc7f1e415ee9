"""Masking a secret in text: the one mask, the one minimum secret length, and `scrub`.

Core: imports nothing from `watcher`. Log redaction (`watcher.logs`) and the hub's exception
text (`watcher.hub`) both mask through this module, so they agree on what counts as a secret;
`redact_dsn`/`scrub_dsn` mask a database password (the ledger's PostgreSQL DSN).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

MASK: Final = "***"

# Secrets shorter than this are never masked: masking a 1-char test token ("t") would turn every
# "t" in a line into "***", and no real AI Hub token is that short (they are ~30 chars). 6 is the
# lower of the two values this replaces (log redaction used 6, the hub's exception text 8), so
# every value either place masked before is still masked in both: unifying exposes nothing.
MIN_SECRET_LENGTH: Final = 6


def scrub(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` replaced by MASK; unchanged when `secret` is
    shorter than MIN_SECRET_LENGTH."""
    if len(secret) < MIN_SECRET_LENGTH or secret not in text:
        return text
    return text.replace(secret, MASK)


# A PostgreSQL connection string may carry a password: in the URL's user info
# (postgresql://user:secret@host/db), as a query parameter (?password=secret) or as a keyword
# (host=h password=secret, quoted or not).
_URL_USERINFO: Final = re.compile(r"(\w+://[^:/@\s]*:)([^@\s]*)(@)")
_PASSWORD_PARAM: Final = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", re.IGNORECASE)


def redact_dsn(text: str) -> str:
    """`text` (a DSN, or a message quoting one) with every password in it replaced by MASK."""
    text = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _PASSWORD_PARAM.sub(lambda m: m.group(1) + MASK, text)


def dsn_secrets(dsn: str) -> tuple[str, ...]:
    """The passwords written in `dsn`, as written and percent-decoded (for `scrub`)."""
    found = [m.group(2) for m in _URL_USERINFO.finditer(dsn)]
    found += [m.group(2).strip("'") for m in _PASSWORD_PARAM.finditer(dsn)]
    return tuple({s for f in found if f for s in (f, unquote(f))})


def scrub_dsn(text: str, dsn: str) -> str:
    """`text` (e.g. a driver's error message) with the passwords of `dsn` masked."""
    for secret in dsn_secrets(dsn):
        text = scrub(text, secret)
    return redact_dsn(text)
