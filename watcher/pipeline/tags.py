"""The drop tag every run carries, so a run whose response was lost can be found again.

Imports only the core.
"""

from __future__ import annotations

from typing import Any, Final

from watcher.config import Rule

TAG_PREFIX: Final = "aihub-watcher:drop="


def drop_tag(drop_id: str) -> str:
    return f"{TAG_PREFIX}{drop_id}"


def is_drop_tag(tag: str) -> bool:
    return tag.startswith(TAG_PREFIX)


def run_settings(rule: Rule, drop_id: str) -> dict[str, Any]:
    """The rule's settings plus our drop tag (the rule's own tags are kept)."""
    settings: dict[str, Any] = rule.settings_dict()
    tags = [str(t) for t in settings.get("tags") or []]
    tags.append(drop_tag(drop_id))
    settings["tags"] = tags
    return settings
