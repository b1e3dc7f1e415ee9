"""What a reload changes (`ConfigDiff`), and the rule table that `check` prints.

Core: imports only the stdlib and this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watcher.config.keys import TOP_VALUE_KEYS
from watcher.config.model import Config

__all__ = ["ConfigDiff", "diff_configs", "summary_table"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDiff:
    """What a reload changes, by rule name (for the `config.reloaded` log line)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    hub_changed: bool = False
    top_level_changed: tuple[str, ...] = ()  # state_dir, log_level, shutdown_timeout_seconds

    def log_fields(self) -> dict[str, Any]:
        """Structured log fields (lists, JSON-friendly)."""
        return {
            "rules_added": list(self.added),
            "rules_removed": list(self.removed),
            "rules_changed": list(self.changed),
            "hub_changed": self.hub_changed,
            "top_level_changed": list(self.top_level_changed),
        }


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """Compare two configs by rule name (rule order alone is not a change)."""
    old_rules = {r.name: r for r in old.rules}
    new_rules = {r.name: r for r in new.rules}
    return ConfigDiff(
        added=tuple(n for n in new_rules if n not in old_rules),
        removed=tuple(n for n in old_rules if n not in new_rules),
        changed=tuple(n for n, r in new_rules.items() if n in old_rules and old_rules[n] != r),
        hub_changed=old.hub != new.hub,
        top_level_changed=tuple(
            name for name in TOP_VALUE_KEYS if getattr(old, name) != getattr(new, name)
        ),
    )


def summary_table(config: Config) -> str:
    """rule | watch | remote_dir | deployment | drop | settle, as aligned text columns.

    A rule with source: upload has no remote_dir; its cell says "(upload)".
    """
    header = ("rule", "watch", "remote_dir", "deployment", "drop", "settle")
    rows = [
        (
            r.name,
            str(r.watch),
            r.remote_dir if r.remote_dir is not None else f"({r.source})",
            r.deployment_id,
            r.drop,
            f"{r.settle_seconds:g}s",
        )
        for r in config.rules
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule_line = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule_line, *(line(r) for r in rows)])
