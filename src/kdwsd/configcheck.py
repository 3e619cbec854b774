"""Unknown config keys, named with the keys allowed where they stand (before Snakemake's schema validation).

jsonschema reports "Unevaluated properties are not allowed ('num_roi' was unexpected)"; a user also wants
to know what the key should have been. :func:`check_known_keys` walks the config along the schema (``$ref``,
``allOf`` and the ``if``/``then`` branches a value satisfies, e.g. the dataset branches chosen by
``dataset.name``) and raises one error listing every unknown key with the allowed ones and a close match.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["UnknownConfigKeyError", "applicable_schemas", "check_known_keys", "property_schema", "unknown_keys"]


class UnknownConfigKeyError(ValueError):
    """A config key the schema does not know."""


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"unsupported $ref {ref!r} in the config schema")
    return _resolve(schema, schema["$defs"][ref.removeprefix("#/$defs/")])


def applicable_schemas(schema: dict[str, Any], node: dict[str, Any], instance: Any) -> list[dict[str, Any]]:
    """``node`` and every subschema that applies to the same instance: ``$ref``, ``allOf`` and the ``then``
    branch of each ``if`` that ``instance`` satisfies."""
    found = [node]
    if "$ref" in node:
        found += applicable_schemas(schema, _resolve(schema, node), instance)
    for sub in node.get("allOf", []):
        found += applicable_schemas(schema, sub, instance)
    if "if" in node and jsonschema.Draft202012Validator(node["if"]).is_valid(instance):
        found += applicable_schemas(schema, node.get("then", {}), instance)
    return found


def property_schema(schema: dict[str, Any], node: dict[str, Any], instance: Any, key: str) -> dict[str, Any] | None:
    """The (merged) schema of ``instance[key]`` where ``instance`` is validated by ``node``; None if unknown."""
    applicable = applicable_schemas(schema, node, instance)
    merged: dict[str, Any] = {}
    for sub in applicable:
        if key in sub.get("properties", {}):
            merged.update(sub["properties"][key])
    if merged:
        return merged
    for sub in applicable:
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict):
            return extra
    return None


def _allowed(schema: dict[str, Any], node: dict[str, Any], instance: Any) -> list[str] | None:
    """The keys allowed in ``instance`` (None when any key is: a free mapping such as dataset.splits)."""
    applicable = applicable_schemas(schema, node, instance)
    if any(isinstance(s.get("additionalProperties"), dict) for s in applicable):
        return None
    return sorted({k for s in applicable for k in s.get("properties", {})})


def unknown_keys(config: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """``[(dotted path of an unknown key, keys allowed there)]``, depth first."""
    out: list[tuple[str, list[str]]] = []

    def walk(node: dict[str, Any], instance: Any, prefix: str) -> None:
        if not isinstance(instance, dict):
            return
        allowed = _allowed(schema, node, instance)
        for key, value in instance.items():
            if allowed is not None and key not in allowed:
                out.append((f"{prefix}{key}", allowed))
                continue
            sub = property_schema(schema, node, instance, key)
            if sub is not None:
                walk(sub, value, f"{prefix}{key}.")

    walk(schema, config, "")
    return out


def check_known_keys(config: dict[str, Any], schema_file: Path | str) -> None:
    """Raise :class:`UnknownConfigKeyError` naming every unknown key, the keys allowed there and the closest."""
    schema = yaml.safe_load(Path(schema_file).read_text())
    found = unknown_keys(config, schema)
    if not found:
        return
    lines = []
    for path, allowed in found:
        close = difflib.get_close_matches(path.rsplit(".", 1)[-1], allowed, n=1)
        where = path.rsplit(".", 1)[0] if "." in path else "the top level"
        lines.append(f"unknown config key '{path}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                     + f"; keys allowed in {where}: {', '.join(allowed)}")  # fmt: skip
    raise UnknownConfigKeyError("\n".join(lines) + f"\n(every key, its type and default: {schema_file})")
