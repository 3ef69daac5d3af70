"""Token bounds of a JSON schema: how many new tokens always suffice for an answer, and how many the closing guard
needs to finish one from anywhere. Pure functions of the schema (no torch), valid for any byte-level BPE model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# xgrammar (0.2.8, measured) writes length-bounded JSON strings without escapes, so a character is at
# most 4 UTF-8 bytes, and a byte-level BPE token carries at least one byte: bytes bound tokens.
BYTES_PER_CHAR = 4
_SEPARATOR = 2  # ", " and ": " with whitespace constrained


@dataclass(frozen=True)
class _Bounds:
    longest: int  # bytes of the longest valid value
    guarded: int  # tokens to write the value, from anywhere up to its start, while the guard steers


def _json_bytes(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def _resolve_ref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node["$ref"]
    if not ref.startswith("#/"):
        raise ValueError(f"cannot bound a schema with a non-local $ref: {ref}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return target


def _bounds(node: dict[str, Any], root: dict[str, Any]) -> _Bounds:
    """Both bounds of a schema node; ``ValueError`` where a part is unbounded."""
    if "$ref" in node:
        return _bounds(_resolve_ref(node, root), root)
    if "enum" in node or "const" in node:
        size = max(_json_bytes(v) for v in node.get("enum", [node.get("const")]))
        return _Bounds(size, size)
    alternatives = node.get("anyOf") or node.get("oneOf")
    if isinstance(node.get("type"), list):
        alternatives = [{**node, "type": t} for t in node["type"]]
    if alternatives:
        parts = [_bounds(alt, root) for alt in alternatives]
        return _Bounds(max(p.longest for p in parts), max(p.guarded for p in parts))
    kind = node.get("type")
    if kind == "string":
        if "maxLength" not in node or "pattern" in node or "format" in node:
            raise ValueError("cannot bound a string without maxLength (or with a pattern or format)")
        # Guarded: the quotes, the shortest content allowed, and a character half written past it.
        least = node.get("minLength", 0)
        return _Bounds(2 + BYTES_PER_CHAR * node["maxLength"], 2 + BYTES_PER_CHAR * (least + 1))
    if kind == "integer":
        if "minimum" not in node or "maximum" not in node:
            raise ValueError("cannot bound an integer without minimum and maximum")
        size = max(len(str(node["minimum"])), len(str(node["maximum"])))
        return _Bounds(size, size)
    if kind in ("boolean", "null"):
        return _Bounds(5, 5)
    if kind == "array":
        if "maxItems" not in node or not isinstance(node.get("items"), dict) or "prefixItems" in node:
            raise ValueError("cannot bound an array without maxItems and a single items schema")
        item = _bounds(node["items"], root)
        most = node["maxItems"]
        # One token may open the list and its first item together, so even an empty list may get one.
        least = max(node.get("minItems", 0), 1)
        return _Bounds(
            2 + most * item.longest + _SEPARATOR * max(most - 1, 0),
            2 + least * item.guarded + _SEPARATOR * (least - 1),
        )
    if kind == "object":
        if node.get("additionalProperties", False) is not False or "patternProperties" in node:
            raise ValueError("cannot bound an object that allows additional properties")
        # Every property counts, optional ones too: the model, not the guard, decides whether to write them.
        entries = [
            (_json_bytes(key) + _SEPARATOR, _bounds(value, root))
            for key, value in node.get("properties", {}).items()
        ]
        separators = _SEPARATOR * max(len(entries) - 1, 0)
        return _Bounds(
            2 + separators + sum(key + value.longest for key, value in entries),
            2 + separators + sum(key + value.guarded for key, value in entries),
        )
    raise ValueError(f"cannot bound schema node {node!r}")


def max_tokens_for_schema(schema: dict[str, Any]) -> int:
    """New tokens that always suffice for a whole answer: its longest valid JSON in bytes, plus the stop.

    Raises ``ValueError`` for schemas with unbounded parts (strings without maxLength, and the like).
    """
    return _bounds(schema, schema).longest + 1


def closing_reserve(schema: dict[str, Any]) -> int:
    """New tokens within which the closing guard finishes any partial answer, the stop token included.

    From any point of an answer, what is left to write under the guard is at most what the guard needs to
    write the whole answer from its start: every property, each string at its minLength, lists at minItems.
    """
    return _bounds(schema, schema).guarded + 1


def _narrowed(node: Any, scale: float) -> Any:
    """The schema with every maxLength and maxItems scaled by ``scale`` (never below minLength, minItems)."""
    if isinstance(node, list):
        return [_narrowed(item, scale) for item in node]
    if not isinstance(node, dict):
        return node
    narrowed = {key: _narrowed(value, scale) for key, value in node.items()}
    for most, least in (("maxLength", "minLength"), ("maxItems", "minItems")):
        if isinstance(node.get(most), int):
            narrowed[most] = max(node.get(least, 0), int(node[most] * scale))
    return narrowed


def fit_schema_to_budget(schema: dict[str, Any], budget: int) -> dict[str, Any] | None:
    """The schema narrowed as little as needed (strings shorter, lists shorter, by one common factor) for its
    longest answer to fit ``budget`` new tokens; None where even the shortest allowed lengths do not fit.

    An engine that cannot steer each token (llama.cpp's grammar sampler) closes an answer that ran out of tokens by
    generating it again under this schema: every answer it admits finishes within the budget.
    """
    if max_tokens_for_schema(schema) <= budget:
        return schema
    if max_tokens_for_schema(_narrowed(schema, 0.0)) > budget:
        return None
    low, high = 0.0, 1.0
    for _ in range(24):
        middle = (low + high) / 2
        if max_tokens_for_schema(_narrowed(schema, middle)) <= budget:
            low = middle
        else:
            high = middle
    return _narrowed(schema, low)
