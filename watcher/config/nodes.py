"""Reading the composed YAML node tree: issues at FILE:LINE:COL, the pre-scan, merges, scalars.

Core: imports only the stdlib, `yaml` and this package. Knows YAML, not the config's keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from watcher.config.checks import INVALID
from watcher.config.env import expand_env
from watcher.config.tokens import CREDENTIAL_NAME
from watcher.errors import ConfigIssue, Severity

__all__ = ["TOKEN_KEYS", "NodeReader", "join"]

# Key names that only ever hold an API token: refused wherever they appear (see _token_key).
TOKEN_KEYS: Final = frozenset({"token", "api_key", "api_token", "apikey", "authorization"})

_STR_TAG: Final = "tag:yaml.org,2002:str"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_TOKEN_EXEMPT_PARENT_RE: Final = re.compile(r"(?:^|\.)settings\.keys\.(?:custom|secret)\Z")


def join(path: str, key: str) -> str:
    """The key path of `key` under `path` ("" is the root)."""
    return f"{path}.{key}" if path else key


def _token_key(parent_path: str, name: str) -> bool:
    # Names under settings.keys.custom/secret are the deployment's own key names (a secret's value
    # is a vault *name*), not where our API token goes, so they are allowed.
    normalized = name.strip().lower().replace("-", "_")
    return normalized in TOKEN_KEYS and not _TOKEN_EXEMPT_PARENT_RE.search(parent_path)


class NodeReader:
    """Reads nodes of one document, recording every issue; the parser's shared state."""

    def __init__(self, *, file: str, env: Mapping[str, str], base_dir: Path) -> None:
        self.file = file
        self.env = env
        self.base_dir = base_dir
        self.issues: list[ConfigIssue] = []
        self.loader: yaml.SafeLoader | None = None
        self._scanned: set[int] = set()

    # -- reporting --

    def issue(
        self, node: yaml.Node | None, path: str, message: str, severity: Severity = "error"
    ) -> None:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.issues.append(
            ConfigIssue(
                file=self.file,
                line=line,
                col=col,
                key_path=path or "(root)",
                message=message,
                severity=severity,
            )
        )

    def at_line(self, where: tuple[int, int] | None, path: str, message: str) -> None:
        """An issue at a 0-based (line, column), or at 1:1 when the position is unknown."""
        line, col = (where[0] + 1, where[1] + 1) if where else (1, 1)
        self.issues.append(
            ConfigIssue(file=self.file, line=line, col=col, key_path=path, message=message)
        )

    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.issues)

    def sorted_issues(self) -> list[ConfigIssue]:
        unique = list(dict.fromkeys(self.issues))
        return sorted(unique, key=lambda i: (i.line, i.col))

    # -- whole-tree pre-scan: duplicate keys, non-string keys, literal tokens --

    def scan_tree(self, node: yaml.Node, path: str) -> None:
        if id(node) in self._scanned:
            return  # an alias: already scanned where the anchor is
        self._scanned.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.scan_tree(item, f"{path}[{i}]")
        elif isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG:
                    self.scan_tree(value, path)
                    continue
                if not isinstance(key, yaml.ScalarNode):
                    self.issue(key, path, "keys must be plain strings")
                    continue
                name = str(key.value)
                child = join(path, name)
                if name in seen:
                    first = seen[name].start_mark.line + 1
                    self.issue(
                        key, child, f"duplicate key {name!r} (first defined on line {first})"
                    )
                else:
                    seen[name] = key
                if _token_key(path, name):
                    # Never quote the value: it is a secret.
                    self.issue(
                        key,
                        child,
                        "a literal API token does not belong in the config file; put it in the"
                        " environment variable named by hub.token_env (default AIHUB_TOKEN),"
                        " in a file named by hub.token_file, or in the systemd credential"
                        f" {CREDENTIAL_NAME!r}",
                    )
                    continue
                self.scan_tree(value, child)

    # -- node access --

    def entries(self, node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """name -> (key node, value node); first wins (duplicates were reported by scan_tree)."""
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(self.entries(source, path).values())
                    else:
                        self.issue(key, path, "'<<' merges must name mappings")
                continue
            if not isinstance(key, yaml.ScalarNode):
                continue
            name = str(key.value)
            if name in out or _token_key(path, name):
                continue
            out[name] = (key, value)
        for key, value in merged:  # explicit keys win over merged ones, as in YAML
            out.setdefault(str(key.value), (key, value))
        return out

    def scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        assert self.loader is not None
        tag, value = node.tag, str(node.value)
        if tag == _STR_TAG:
            expanded, errors = expand_env(value, self.env)
            for message in errors:
                self.issue(node, path, message)
            if errors:
                return INVALID
            if expanded != value and node.style is None:
                # A plain `${N:-4}` means the number 4 once expanded; a quoted one stays a string.
                tag = self.loader.resolve(  # type: ignore[no-untyped-call]
                    yaml.ScalarNode, expanded, (True, False)
                )
            value = expanded
            if tag == _STR_TAG:
                return value
        try:
            return self.loader.construct_object(
                yaml.ScalarNode(tag, value, node.start_mark, node.end_mark, node.style), deep=True
            )
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.issue(node, path, f"cannot read this value: {problem}")
            return INVALID

    def plain(self, node: yaml.Node, path: str) -> Any:
        """The node as plain Python (strings expanded), or INVALID after recording why."""
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = [self.plain(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
            return INVALID if any(item is INVALID for item in items) else items
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            bad = False
            for name, (_key, value) in self.entries(node, path).items():
                out[name] = self.plain(value, join(path, name))
                bad = bad or out[name] is INVALID
            return INVALID if bad else out
        return INVALID  # pragma: no cover - compose only yields the three node kinds
