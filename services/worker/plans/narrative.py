"""The plan's short narrative for the teacher: the one part a model writes, from the plan's facts, under a small
JSON schema; a plain narrative from the same facts stands in when the model gives no usable answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.worker.plans.draft import PlanDraft
from shared.prompts.plans import render_plan_messages

if TYPE_CHECKING:
    from services.worker.engine import Engine

logger = logging.getLogger(__name__)

NARRATIVE_MAX_CHARS = 200
NARRATIVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"narrative": {"type": "string", "minLength": 1, "maxLength": NARRATIVE_MAX_CHARS}},
    "required": ["narrative"],
    "additionalProperties": False,
}


def narrative_messages(draft: PlanDraft) -> list[dict[str, str]]:
    """The chat messages for one plan (``shared/prompts/templates/plan-v1.j2``): facts only, no names."""
    return render_plan_messages(
        essay_count=len(draft.essay_ids), focus_areas=draft.focus_areas, trend=draft.trend,
        exercise_titles=[exercise.title for area in draft.focus_areas for exercise in area.exercises],
        max_chars=NARRATIVE_MAX_CHARS,
    )


def plain_narrative(draft: PlanDraft) -> str:
    """A plain narrative from the facts, used when the model gives no usable answer."""
    weak = "、".join(a.label for a in draft.focus_areas if a.kind == "dimension")
    errors = "、".join(a.label for a in draft.focus_areas if a.kind == "error")
    parts = []
    if weak:
        parts.append(f"该生{weak}方面相对薄弱")
    if errors:
        parts.append(f"{errors}问题反复出现")
    text = "，".join(parts) or "该生各项表现较均衡"
    titles = "、".join(e.title for a in draft.focus_areas for e in a.exercises[:1])
    if titles:
        text += f"，建议先安排{titles}"
    if draft.trend is not None:
        text += f"；近期总分得分率{draft.trend.direction}"
    return (text + "。")[:NARRATIVE_MAX_CHARS]


def parse_narrative(text: str) -> str | None:
    """The narrative of a model's answer, whitespace collapsed and cut to the limit; None when unusable."""
    try:
        answer = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    narrative = answer.get("narrative") if isinstance(answer, dict) else None
    if not isinstance(narrative, str):
        return None
    narrative = " ".join(narrative.split())[:NARRATIVE_MAX_CHARS]
    return narrative or None


def narrate(engine: Engine, drafts: Sequence[PlanDraft]) -> list[tuple[str, bool]]:
    """(narrative, written by the model) per draft, in order, from one batched call; an error of the call as a
    whole is raised."""
    if not drafts:
        return []
    generations = engine.generate_json([narrative_messages(d) for d in drafts], NARRATIVE_SCHEMA)
    results = []
    for draft, generation in zip(drafts, generations, strict=True):
        narrative = None if generation.error else parse_narrative(generation.text)
        if narrative is None:
            logger.warning("no usable narrative for student %s (%s); using the plain one",
                           draft.student_id, generation.error or "invalid answer")
            results.append((plain_narrative(draft), False))
        else:
            results.append((narrative, True))
    return results


def write_narratives(engine: Engine, drafts: Sequence[PlanDraft]) -> list[str]:
    """One narrative (≤ 200 characters) per draft, in order, generated as one batch."""
    return [text for text, _ in narrate(engine, drafts)]
