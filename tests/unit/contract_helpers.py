"""The contract checks' helpers: inline a spec schema's `$ref`s, close its objects, validate an
instance against it, and match a request path to a spec path template."""

from __future__ import annotations

import copy
from typing import Any

from openapi_schema_validator import OAS30Validator


def resolve(node: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """Inline local `$ref`s ('#/components/...') so the schema stands alone."""
    assert depth < 50, "recursive $ref"
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), f"non-local $ref {ref}"
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolve(target, root, depth + 1)
        return {k: resolve(v, root, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, root, depth + 1) for v in node]
    return node


def closed(schema: Any) -> Any:
    """A copy where objects with declared properties reject undeclared keys (unless the spec
    says otherwise): catches a misspelt field, which the open vendor schema would accept."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def assert_valid(schema: dict[str, Any], instance: Any) -> None:
    for s in (schema, closed(schema)):
        errors = sorted(OAS30Validator(s).iter_errors(instance), key=str)
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def path_template_matches(template: str, raw_path: str) -> bool:
    t_parts, p_parts = template.strip("/").split("/"), raw_path.strip("/").split("/")
    if template.endswith("{path}"):  # the files path parameter spans segments
        n = len(t_parts) - 1
        return t_parts[:n] == p_parts[:n] and len(p_parts) > n
    return len(t_parts) == len(p_parts) and all(
        t == p or (t.startswith("{") and t.endswith("}"))
        for t, p in zip(t_parts, p_parts, strict=True)
    )


def spec_operation(spec: dict[str, Any], method: str, raw_path: str) -> tuple[str, dict[str, Any]]:
    """The spec's (path template, operation) for a request path below the API root: the template
    with the most literal segments wins ('/v2/batches/multipart-upload' over
    '/v2/batches/{batch_id}'). Fails the test when the spec has none."""
    matches = [t for t in spec["paths"] if path_template_matches(t, raw_path)]
    assert matches, f"no spec path for {raw_path}"
    best = max(matches, key=lambda t: sum(not p.startswith("{") for p in t.split("/")))
    op = spec["paths"][best].get(method.lower())
    assert op is not None, f"{method} {best} not in spec"
    return best, op
