"""The JSON Schema of the config file (`aihub-watcher schema`), derived from the key tables.

Core: imports only the stdlib and this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from watcher.config.keys import (
    DEFAULTS_BY_NAME,
    HUB_BY_NAME,
    RULE_BY_NAME,
    SETTINGS_KEYS,
    SETTINGS_KEYS_KEYS,
    TOP_BY_NAME,
    TOP_KEYS,
    TOP_VALUE_KEYS,
    KeySpec,
)

__all__ = ["json_schema"]

_ENV_REF_SCHEMA: Final = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
    "description": "a ${VAR} or ${VAR:-default} reference, expanded when the config loads",
}


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return dict(value) if isinstance(value, Mapping) else value


def _spec_schema(spec: KeySpec) -> dict[str, Any]:
    inner: dict[str, Any]
    if spec.kind in ("str", "path", "template"):
        inner = {"type": "string"}
    elif spec.kind in ("int", "number"):
        inner = {"type": "integer" if spec.kind == "int" else "number"}
        if spec.minimum is not None:
            inner["minimum"] = spec.minimum
        if spec.maximum is not None:
            inner["maximum"] = spec.maximum
        if spec.exclusive_minimum is not None:
            inner["exclusiveMinimum"] = spec.exclusive_minimum
    elif spec.kind == "choice":
        inner = {"enum": list(spec.choices)}
    elif spec.kind == "action":
        inner = {"anyOf": [{"enum": list(spec.choices)}, {"type": "string", "pattern": "^move:/"}]}
    elif spec.kind == "globs":
        inner = {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}}
    elif spec.kind == "bool":
        inner = {"type": "boolean"}
    elif spec.kind == "settings":
        inner = {"$ref": "#/$defs/settings"}
    elif spec.kind == "group":
        names = {s.name: s for s in spec.keys}
        inner = _object_schema(names, spec.doc, required=())
        inner["type"] = ["object", "null"]
    else:  # pragma: no cover - sections are built by json_schema()
        raise AssertionError(spec.kind)
    options: list[dict[str, Any]] = [inner]
    if spec.kind not in ("str", "path", "template", "settings", "group"):
        options.append({"$ref": "#/$defs/env_ref"})  # a plain `${N:-4}` expands to a number
    if spec.nullable:
        options.append({"type": "null"})
    out: dict[str, Any] = {"description": spec.doc}
    out |= options[0] if len(options) == 1 else {"anyOf": options}
    if not spec.required and spec.default is not None:
        out["default"] = _json_default(spec.default)
    return out


def _object_schema(
    specs: Mapping[str, KeySpec], doc: str, *, required: tuple[str, ...] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "description": doc,
        "additionalProperties": False,
        "properties": {name: _spec_schema(spec) for name, spec in specs.items()},
    }
    names = [s.name for s in specs.values() if s.required] if required is None else required
    if names:
        out["required"] = list(names)
    return out


def _inheritable_required() -> list[dict[str, Any]]:
    """Each required rule key that `defaults` can supply is required in a rule only without it."""
    return [
        {
            "if": {
                "not": {
                    "required": ["defaults"],
                    "properties": {"defaults": {"type": "object", "required": [name]}},
                }
            },
            "then": {"properties": {"rules": {"items": {"required": [name]}}}},
        }
        for name, spec in DEFAULTS_BY_NAME.items()
        if spec.required
    ]


def _required_when() -> list[dict[str, Any]]:
    """A key with `required_when=(key, value)` (remote_dir with source: drive) is required in a
    rule whose `key` is `value`: its own, else the defaults', else the table's. Never when the
    defaults supply the key itself."""
    out: list[dict[str, Any]] = []
    for name, spec in DEFAULTS_BY_NAME.items():
        if spec.required_when is None:
            continue
        key, wanted = spec.required_when
        needs = {"required": [name]}
        # Per value of `key` in the defaults (None: the defaults leave it out): when a rule that
        # leaves `key` out inherits that value, and whether the rule must then carry `name`.
        for inherited in (None, *DEFAULTS_BY_NAME[key].choices):
            if inherited is None:
                when: dict[str, Any] = {
                    "not": {
                        "required": ["defaults"],
                        "properties": {
                            "defaults": {
                                "type": "object",
                                "anyOf": [{"required": [name]}, {"required": [key]}],
                            }
                        },
                    }
                }
            else:
                when = {
                    "required": ["defaults"],
                    "properties": {
                        "defaults": {
                            "type": "object",
                            "required": [key],
                            "not": {"required": [name]},
                            "properties": {key: {"const": inherited}},
                        }
                    },
                }
            effective = DEFAULTS_BY_NAME[key].default if inherited is None else inherited
            own_is = {"required": [key], "properties": {key: {"const": wanted}}}
            own_is_not = {"required": [key], "properties": {key: {"not": {"const": wanted}}}}
            rule_if = {"not": own_is_not} if effective == wanted else own_is
            items = {"if": rule_if, "then": needs}
            out.append({"if": when, "then": {"properties": {"rules": {"items": items}}}})
    return out


def _settings_schema() -> dict[str, Any]:
    shapes: dict[str, dict[str, Any]] = {
        "keys": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "custom": {"type": "object", "description": SETTINGS_KEYS_KEYS["custom"]},
                "secret": {
                    "type": "object",
                    "description": SETTINGS_KEYS_KEYS["secret"],
                    "additionalProperties": {"type": "string"},
                },
            },
        },
        "runtime_config": {"type": "object"},
        "tags": {"type": "array", "items": {"type": "string"}},
    }
    return {
        "type": ["object", "null"],
        "description": RULE_BY_NAME["settings"].doc,
        "additionalProperties": False,
        "properties": {
            name: {"description": doc, **shapes[name]} for name, doc in SETTINGS_KEYS.items()
        },
    }


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the config file, built from the same key tables."""
    top = TOP_BY_NAME
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "aihub-watcher config",
        "type": "object",
        "additionalProperties": False,
        "required": [s.name for s in TOP_KEYS if s.required],
        "allOf": [*_inheritable_required(), *_required_when()],
        "properties": {
            "hub": _object_schema(HUB_BY_NAME, top["hub"].doc),
            **{name: _spec_schema(top[name]) for name in TOP_VALUE_KEYS},
            "defaults": {
                "anyOf": [{"$ref": "#/$defs/defaults"}, {"type": "null"}],
                "description": top["defaults"].doc,
            },
            "rules": {
                "type": "array",
                "description": top["rules"].doc,
                "minItems": 1,
                "items": {"$ref": "#/$defs/rule"},
            },
        },
        "$defs": {
            "rule": _object_schema(RULE_BY_NAME, "one watched folder", required=("name",)),
            "defaults": _object_schema(DEFAULTS_BY_NAME, top["defaults"].doc, required=()),
            "settings": _settings_schema(),
            "env_ref": dict(_ENV_REF_SCHEMA),
        },
    }
