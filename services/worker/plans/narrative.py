"""The plan's short narrative for the teacher: the one part a model writes, from the plan's facts, under a small
JSON schema; a plain narrative from the same facts stands in when the model gives no usable answer."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.worker.plans.draft import PlanDraft
from shared.prompts.plans import render_plan_messages

if TYPE_CHECKING:
    from services.worker.engine import Engine

logger = logging.getLogger(__name__)

NARRATIVE_MAX_CHARS = 200
# Asked of the model: below the schema's hard limit, so that a forced close of the string stays rare.
NARRATIVE_TARGET_CHARS = 150
NARRATIVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"narrative": {"type": "string", "minLength": 1, "maxLength": NARRATIVE_MAX_CHARS}},
    "required": ["narrative"],
    "additionalProperties": False,
}
SENTENCE_END = "。！？!?"
_CLOSERS = "”’」』）)"
_MARKDOWN_LINE = re.compile(r"^\s*(?:#{1,6}\s*|>\s*|[-*+•·]\s+|\d{1,2}[.、)）]\s*)")
_MARKDOWN_INLINE = re.compile(r"\*{1,3}|_{2,3}|~~|`+")
_SPACE_BETWEEN_CJK = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u9fff\uff00-\uffef])")


def narrative_messages(draft: PlanDraft) -> list[dict[str, str]]:
    """The chat messages for one plan (``shared/prompts/templates/plan-v1.j2``): facts only, no names."""
    strength = draft.strength
    return render_plan_messages(
        essay_count=len(draft.essay_ids), focus_areas=draft.focus_areas, trend=draft.trend,
        exercise_titles=[exercise.title for area in draft.focus_areas for exercise in area.exercises],
        max_chars=NARRATIVE_TARGET_CHARS,
        standings=[(s.name, s.student_rate, s.class_rate) for s in draft.standings],
        strength=(strength.name, strength.student_rate, strength.class_rate) if strength else None,
    )


def complete_sentences(text: str, max_chars: int = NARRATIVE_MAX_CHARS) -> str | None:
    """Plain text of whole sentences within ``max_chars``: Markdown marks removed, lines joined, a trailing
    fragment (a sentence cut off) dropped; None when not one whole sentence is left."""
    lines = [_MARKDOWN_LINE.sub("", line) for line in text.splitlines()]
    plain = _MARKDOWN_INLINE.sub("", " ".join(line.strip() for line in lines if line.strip()))
    plain = _SPACE_BETWEEN_CJK.sub("", " ".join(plain.split()))
    plain = plain[:max_chars]
    end = max(plain.rfind(mark) for mark in SENTENCE_END)
    if end < 0:
        return None
    end += 1
    while end < len(plain) and plain[end] in _CLOSERS:
        end += 1
    return plain[:end].strip() or None


def _percent(rate: float) -> str:
    return f"{rate:.0%}"


def plain_narrative(draft: PlanDraft) -> str:
    """A narrative in whole sentences from the plan's own numbers, used when the model gives no usable answer.

    Sentences are added by priority (weakness, recurring errors, exercises, trend, strength) while they fit the
    limit, and printed in that order.
    """
    weak = [a for a in draft.focus_areas if a.kind == "dimension"]
    standings = {s.key: s for s in draft.standings}
    errors = {p.type: p for p in draft.errors}
    sentences = []
    if weak:
        rates = [standings[a.key] for a in weak if a.key in standings]
        labels = "、".join(a.label for a in weak)
        if len(rates) == 1:
            figures = f"得分率 {_percent(rates[0].student_rate)}，班级平均 {_percent(rates[0].class_rate)}"
        else:
            figures = (f"得分率分别为 {'、'.join(_percent(s.student_rate) for s in rates)}，"
                       f"班级平均为 {'、'.join(_percent(s.class_rate) for s in rates)}")
        sentences.append(f"该生{labels}方面相对薄弱，{figures}。")
    for area in (a for a in draft.focus_areas if a.kind == "error"):
        pattern = errors.get(area.key)
        count = f"共出现 {pattern.count} 处" if pattern else "反复出现"
        example = f"，如“{area.examples[0]}”" if area.examples else ""
        sentences.append(f"{area.label}{count}{example}，需要逐条订正。")
    if not sentences:
        sentences.append("该生各项表现较均衡。")
    titles = "、".join(e.title for a in draft.focus_areas for e in a.exercises[:1])
    if titles:
        sentences.append(f"建议先完成{titles}。")
    if draft.trend is not None:
        sentences.append(f"近 {len(draft.essay_ids)} 篇总分得分率从 {draft.trend.first:.0f}% 到 "
                         f"{draft.trend.last:.0f}%，走势{draft.trend.direction}。")
    strength = draft.strength
    if strength is not None:
        sentences.append(f"{strength.name}是该生的长处（得分率 {_percent(strength.student_rate)}，"
                         f"班级平均 {_percent(strength.class_rate)}），可继续保持。")
    text = ""
    for sentence in sentences:
        if len(text) + len(sentence) <= NARRATIVE_MAX_CHARS:
            text += sentence
    return text or sentences[0][:NARRATIVE_MAX_CHARS - 1].rstrip("，、；") + "。"


def parse_narrative(text: str) -> str | None:
    """The narrative of a model's answer as plain text in whole sentences within the limit; None when unusable."""
    try:
        answer = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    narrative = answer.get("narrative") if isinstance(answer, dict) else None
    if not isinstance(narrative, str):
        return None
    return complete_sentences(narrative)


def narrate(engine: Engine, drafts: Sequence[PlanDraft]) -> list[tuple[str, bool]]:
    """(narrative, written by the model) per draft, in order, from one batched call; an error of the call as a
    whole is raised."""
    if not drafts:
        return []
    generations = engine.generate_json([narrative_messages(d) for d in drafts], NARRATIVE_SCHEMA)
    results = []
    used: set[str] = set()
    for draft, generation in zip(drafts, generations, strict=True):
        narrative = None if generation.error else parse_narrative(generation.text)
        problem = generation.error or "invalid answer"
        if narrative is not None and narrative in used:
            narrative, problem = None, "word for word another student's narrative"
        if narrative is None:
            logger.warning("no usable narrative for student %s (%s); using the plain one", draft.student_id, problem)
            results.append((plain_narrative(draft), False))
        else:
            used.add(narrative)
            results.append((narrative, True))
    return results


def write_narratives(engine: Engine, drafts: Sequence[PlanDraft]) -> list[str]:
    """One narrative (≤ 200 characters) per draft, in order, generated as one batch."""
    return [text for text, _ in narrate(engine, drafts)]
