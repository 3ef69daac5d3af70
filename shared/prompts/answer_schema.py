"""The JSON schema of the model's answer, derived from a rubric, and the parser that enforces it.

The same schema constrains generation (the engine compiles it with xgrammar, whitespace fixed, string characters
limited to what ``json.loads`` takes and to valid UTF-8: ``services/worker/engine/grammar.py``) and validates what
comes back, so an answer that parses here is one the grammar could produce, and every answer the grammar lets the
model finish parses here: maxLength counts code points on both sides.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from jsonschema import Draft202012Validator

from shared.prompts.rubric import Rubric

logger = logging.getLogger(__name__)

_CODE_FENCE_RE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class AnswerInvalid(ValueError):
    """The model's answer is not JSON or does not match the rubric's answer schema."""


def _string(max_length: int, min_length: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def answer_schema(rubric: Rubric) -> dict[str, Any]:
    """Return the JSON schema of an answer: one object per dimension, then ``errors``, then ``comment``."""
    limits = rubric.output_limits
    properties: dict[str, Any] = {}
    for dim in rubric.dimensions:
        properties[dim.key] = {
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 0, "maximum": dim.max},
                "band": {"type": "string", "enum": [band.name for band in dim.bands]},
                "evidence": {
                    "type": "array",
                    "items": _string(limits.evidence_max_chars),
                    "maxItems": limits.evidence_max_items,
                },
            },
            "required": ["score", "band", "evidence"],
            "additionalProperties": False,
        }
    properties["errors"] = {
        "type": "array",
        "maxItems": limits.errors_max_items,
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": list(rubric.error_types)},
                "original": _string(limits.quote_max_chars),
                "suggestion": _string(limits.suggestion_max_chars, min_length=0),
                "explanation": _string(limits.explanation_max_chars, min_length=0),
            },
            "required": ["type", "original", "suggestion", "explanation"],
            "additionalProperties": False,
        },
    }
    properties["comment"] = _string(limits.comment_max_chars)
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def parse_answer(text: str, rubric: Rubric) -> dict[str, Any]:
    """Parse the model's answer and validate it against ``answer_schema(rubric)``; raise AnswerInvalid."""
    stripped = text.strip()
    fenced = _CODE_FENCE_RE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        answer = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise AnswerInvalid(
            f"answer is not valid JSON ({exc.msg} at char {exc.pos}): {stripped[:80]!r}"
        ) from exc
    validator = Draft202012Validator(answer_schema(rubric))
    problems = sorted(validator.iter_errors(answer), key=lambda error: list(error.absolute_path))
    if problems:
        details = "; ".join(
            f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
            for error in problems[:5]
        )
        raise AnswerInvalid(f"answer does not match the schema of rubric {rubric.ref}: {details}")
    return answer
