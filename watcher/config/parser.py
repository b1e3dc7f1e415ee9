"""Reading a config file: YAML syntax, the document's sections, then the checks across rules.

Core: imports only the stdlib, `yaml`, `watcher.errors` and this package. Never exits and
never raises anything but ConfigError (with every issue, sorted by line).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import yaml

from watcher.config.checks import INVALID
from watcher.config.crosscheck import cross_check
from watcher.config.keys import (
    DEFAULT_STATE_DIR,
    DEFAULTS_BY_NAME,
    HUB_BY_NAME,
    RULE_BY_NAME,
    TOP_BY_NAME,
    TOP_VALUE_KEYS,
)
from watcher.config.model import (
    Config,
    HubConfig,
    MetricsSettings,
    Rule,
    StateSettings,
    UploadSettings,
)
from watcher.config.nodes import NodeReader
from watcher.config.relations import check_relations
from watcher.config.values import Draft, convert, read_section, report_unknown
from watcher.errors import ConfigError, ConfigIssue

__all__ = ["load_config", "parse_config"]

_RULE_HINT: Final = "it is a rule setting: put it under a rule or under defaults:"
_HUB_HINT: Final = "it is a hub setting: put it under hub:"


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path` (`env` defaults to the process environment).

    Raises:
        ConfigError: the file cannot be read, or has errors (all of them, with FILE:LINE:COL).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        issue = ConfigIssue(
            file=str(path), line=1, col=1, key_path="(file)", message=f"cannot read: {reason}"
        )
        raise ConfigError([issue]) from None
    return parse_config(text, path=path, env=os.environ if env is None else env)


def parse_config(text: str, *, path: Path, env: Mapping[str, str]) -> Config:
    """Validate config text in one pass; `path` names it in issues and anchors relative paths.

    Raises:
        ConfigError: any error (`.issues` holds every error and warning, sorted by line).
    """
    reader = NodeReader(file=str(path), env=env, base_dir=Path(os.path.abspath(path)).parent)
    try:
        root = _compose(reader, text)
        reader.scan_tree(root, "")
        config = _document(reader, root, path)
    finally:
        if reader.loader is not None:
            reader.loader.dispose()
    if config is None:
        raise ConfigError(reader.sorted_issues())
    return config


def _compose(reader: NodeReader, text: str) -> yaml.MappingNode:
    """The document's root mapping node (the loader stays on `reader` for scalars).

    Raises:
        ConfigError: a YAML syntax error, an empty file, or a top level that is not a mapping.
    """
    try:
        # The reader rejects control characters in the constructor, so it is inside the try.
        loader = reader.loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = (mark.line, mark.column) if mark else None
        reader.at_line(where, "yaml", f"YAML syntax error: {problem}")
        raise ConfigError(reader.sorted_issues()) from None
    except yaml.YAMLError as exc:
        # ReaderError (a control character) knows only its offset into the text.
        offset = getattr(exc, "position", None)
        at = None
        if isinstance(offset, int):
            at = (text.count("\n", 0, offset), offset - (text.rfind("\n", 0, offset) + 1))
        reader.at_line(at, "yaml", f"YAML syntax error: {exc}")
        raise ConfigError(reader.sorted_issues()) from None
    if root is None:
        reader.issue(None, "(root)", "the file is empty; it needs at least hub: and rules:")
        raise ConfigError(reader.sorted_issues())
    if not isinstance(root, yaml.MappingNode):
        reader.issue(root, "(root)", "the top level must be a mapping (hub:, rules:, ...)")
        raise ConfigError(reader.sorted_issues())
    return root


def _document(reader: NodeReader, root: yaml.MappingNode, path: Path) -> Config | None:
    """The whole config, or None when any error was recorded."""
    entries = reader.entries(root, "")
    top_hints = {n: "it belongs under hub:" for n in HUB_BY_NAME} | {
        n: _RULE_HINT for n in RULE_BY_NAME
    }
    report_unknown(reader, entries, TOP_BY_NAME, "", top_hints)

    hub = _hub(reader, entries.get("hub"), root)
    top = Draft(index=-1, node=root)
    for name in TOP_VALUE_KEYS:
        if name in entries:
            key, value = entries[name]
            top.values[name] = convert(reader, TOP_BY_NAME[name], key, value, name)
            top.where[name] = (key, name)
    state_dir = _state_dir(reader, top)
    state = _state(reader, top)
    defaults = _defaults(reader, entries.get("defaults"), root)
    drafts = _rules(reader, entries.get("rules"), root, defaults)
    cross_check(reader, drafts, top, state_dir)

    if reader.has_errors() or hub is None or state_dir is None or state is None:
        return None
    top.values["metrics"] = MetricsSettings(**top.values.get("metrics", {}))
    return Config(
        path=path,
        hub=hub,
        state_dir=state_dir,
        state=state,
        # Keys left out take the dataclass defaults, which come from the key table.
        **{n: v for n, v in top.values.items() if n not in ("state_dir", "state")},
        rules=tuple(_rule(d) for d in drafts),
        warnings=tuple(reader.sorted_issues()),
    )


def _rule(draft: Draft) -> Rule:
    """The Rule of a valid draft: `upload` (the keys given, merged over defaults) gets the
    table's defaults for the rest."""
    values = dict(draft.values)
    values["upload"] = UploadSettings(**values["upload"])
    return Rule(**values)


def _hub(
    reader: NodeReader, entry: tuple[yaml.Node, yaml.Node] | None, root: yaml.Node
) -> HubConfig | None:
    if entry is None:
        reader.issue(root, "hub", "missing required key 'hub' (at least hub.base_url)")
        return None
    key, node = entry
    if not isinstance(node, yaml.MappingNode):
        reader.issue(key, "hub", f"expected a mapping with {', '.join(HUB_BY_NAME)}")
        return None
    hints = {n: _RULE_HINT for n in RULE_BY_NAME}
    draft = read_section(
        reader, node, HUB_BY_NAME, "hub", hints=hints, draft=Draft(index=-1, node=node)
    )
    if any(v is INVALID for v in draft.values.values()):
        return None
    return HubConfig(**draft.values)


def _state_dir(reader: NodeReader, top: Draft) -> Path | None:
    if "state_dir" in top.values:
        value = top.values["state_dir"]
        if value is INVALID:
            return None
        assert isinstance(value, Path)
        return value
    # systemd's StateDirectory= sets $STATE_DIRECTORY (a ':'-separated list; ours is first).
    from_env = reader.env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(from_env) if from_env else Path(DEFAULT_STATE_DIR)


def _state(reader: NodeReader, top: Draft) -> StateSettings | None:
    """`state:` as StateSettings: backend postgresql needs a dsn; sqlite ignores one."""
    values = top.values.get("state", {})
    if values is INVALID:
        return None
    state = StateSettings(**values)
    node = top.where["state"][0] if "state" in top.where else top.node
    if state.backend == "postgresql" and state.dsn is None:
        reader.issue(
            node,
            "state.dsn",
            "backend: postgresql needs state.dsn, e.g. postgresql://watcher@db.example.com/aihub",
        )
        return None
    if state.backend == "sqlite" and state.dsn is not None:
        reader.issue(
            node,
            "state.dsn",
            "is only used with backend: postgresql; the ledger stays in state_dir",
            severity="warning",
        )
    return state


def _defaults(
    reader: NodeReader, entry: tuple[yaml.Node, yaml.Node] | None, root: yaml.Node
) -> Draft:
    """The values of `defaults:` that every rule inherits (only the keys it sets)."""
    defaults = Draft(index=-1, node=root)
    if entry is None:
        return defaults
    key, node = entry
    if isinstance(node, yaml.MappingNode):
        hints = {n: _HUB_HINT for n in HUB_BY_NAME} | {
            "name": "defaults cannot set 'name'; every rule needs its own"
        }
        read_section(
            reader,
            node,
            DEFAULTS_BY_NAME,
            "defaults",
            hints=hints,
            draft=defaults,
            require=False,
        )
    elif not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        reader.issue(key, "defaults", "expected a mapping of rule keys")
    return defaults


def _rules(
    reader: NodeReader,
    entry: tuple[yaml.Node, yaml.Node] | None,
    root: yaml.Node,
    defaults: Draft,
) -> list[Draft]:
    if entry is None:
        reader.issue(root, "rules", "missing required key 'rules' (a list with at least one rule)")
        return []
    key, node = entry
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        reader.issue(key, "rules", "the rules list is empty; add at least one rule")
        return []
    if not isinstance(node, yaml.SequenceNode):
        reader.issue(key, "rules", "expected a list of rules (each item starts with '- name:')")
        return []
    if not node.value:
        reader.issue(key, "rules", "the rules list is empty; add at least one rule")
        return []
    hints = {n: _HUB_HINT for n in HUB_BY_NAME} | {
        n: "it is a top-level setting" for n in TOP_VALUE_KEYS
    }
    drafts: list[Draft] = []
    for i, item in enumerate(node.value):
        path = f"rules[{i}]"
        if not isinstance(item, yaml.MappingNode):
            reader.issue(item, path, "each rule must be a mapping (name, watch, remote_dir, ...)")
            continue
        draft = Draft(index=i, node=item)
        read_section(reader, item, RULE_BY_NAME, path, hints=hints, draft=draft, inherited=defaults)
        check_relations(reader, draft)
        drafts.append(draft)
    return drafts
