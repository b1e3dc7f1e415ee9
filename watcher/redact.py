"""Masking a secret in text: the one mask, the one minimum secret length, and `scrub`.

Core: imports nothing from `watcher`. Log redaction (`watcher.logs`) and the hub's exception
text (`watcher.hub`) both mask through this module, so they agree on what counts as a secret.
"""

from __future__ import annotations

from typing import Final

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
