"""What a 教案 request takes from a graded assignment: the most frequent error types with counts, the weakest
dimension, and the class's own sentences with errors as 病例, masked (roster names, the school, numbers) before
they are stored or shown to the model."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.deidentify import Deidentifier
from shared.grades import final_grades
from shared.models import Assignment, Essay, School, Student
from shared.prompts.rubric import RubricError, resolve_rubric

logger = logging.getLogger(__name__)

TOP_ERRORS = 5
MAX_EXAMPLES = 6
SENTENCE_MAX = 90
PROMPT_MAX = 600
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


def sentence_around(text: str, start: int, end: int) -> str:
    """The sentence of ``text`` holding [start, end), cut to ``SENTENCE_MAX`` characters around the error."""
    left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    match = _SENTENCE_END.search(text, end)
    right = match.end() if match else len(text)
    sentence = text[left:right].strip()
    if len(sentence) > SENTENCE_MAX:
        middle = (start + end) // 2 - left
        first = max(0, min(middle - SENTENCE_MAX // 2, len(sentence) - SENTENCE_MAX))
        sentence = sentence[first:first + SENTENCE_MAX]
    return sentence


def class_facts(session: Session, assignment: Assignment) -> dict[str, Any]:
    """The assignment's statistics for a 教案, from each essay's final grade; masked text only."""
    essays = session.scalars(select(Essay).where(Essay.assignment_id == assignment.id).order_by(Essay.id)).all()
    grades = final_grades(session, [essay.id for essay in essays])
    roster = session.scalars(select(Student.name).where(Student.classroom_id == assignment.classroom_id)).all()
    school = session.scalar(select(School.name).where(School.id == assignment.classroom.school_id)) or ""
    masker = Deidentifier(roster, [school])
    facts: dict[str, Any] = {
        "assignment_title": masker.mask(assignment.title).text,
        "prompt_text": masker.mask(assignment.prompt_text[:PROMPT_MAX]).text,
        "essays": len(grades), "errors": [], "weakest": None, "dimensions": [], "examples": [],
    }
    if not grades:
        return facts
    counts: Counter[str] = Counter()
    students: dict[str, set[int]] = {}
    for essay_id, grade in grades.items():
        for error in grade.errors:
            counts[error.type] += 1
            students.setdefault(error.type, set()).add(essay_id)
    facts["errors"] = [{"type": kind, "count": count, "essays": len(students[kind])}
                       for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_ERRORS]]
    facts["dimensions"] = _dimensions(assignment, list(grades.values()))
    if facts["dimensions"]:
        facts["weakest"] = min(facts["dimensions"], key=lambda d: (d["rate"], d["key"]))
    facts["examples"] = _examples(essays, grades, [e["type"] for e in facts["errors"]], masker)
    return facts


def _dimensions(assignment: Assignment, grades: list[Any]) -> list[dict[str, Any]]:
    try:
        rubric = resolve_rubric(assignment.rubric_id, assignment.rubric_version)
    except RubricError as exc:
        logger.warning("assignment %s: no rubric for the dimension rates (%s)", assignment.id, exc)
        return []
    rows = []
    for dimension in rubric.dimensions:
        scores = [g.dimension_scores[dimension.key] for g in grades
                  if isinstance(g.dimension_scores.get(dimension.key), int | float)]
        if scores:
            rate = sum(scores) / (len(scores) * dimension.max)
            rows.append({"key": dimension.key, "name": dimension.name, "rate": round(rate, 4)})
    return rows


def _examples(essays: Any, grades: dict[int, Any], kinds: list[str], masker: Deidentifier) -> list[dict[str, str]]:
    """Up to ``MAX_EXAMPLES`` sentences, taking the most frequent error types in turn, one sentence per essay and
    type, masked."""
    texts = {essay.id: essay.text for essay in essays}
    queues: dict[str, list[dict[str, str]]] = {kind: [] for kind in kinds}
    for essay_id, grade in sorted(grades.items()):
        seen: set[str] = set()
        for error in grade.errors:
            if error.type not in queues or error.type in seen:
                continue
            text = texts[essay_id]
            if text[error.start_offset:error.end_offset] != error.original:
                continue  # an offset that does not hold the quote (an edited essay): no sentence to show
            seen.add(error.type)
            queues[error.type].append({
                "type": error.type, "original": masker.mask(error.original).text,
                "suggestion": masker.mask(error.suggestion or "").text,
                "sentence": masker.mask(sentence_around(text, error.start_offset, error.end_offset)).text,
            })
    examples: list[dict[str, str]] = []
    while len(examples) < MAX_EXAMPLES and any(queues.values()):
        for kind in kinds:
            if queues[kind] and len(examples) < MAX_EXAMPLES:
                examples.append(queues[kind].pop(0))
    return examples
