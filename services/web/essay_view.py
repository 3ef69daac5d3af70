"""Everything the essay page (and the API's essay detail) shows, assembled from the essay and its grades."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.web.highlight import MarkedError, highlight
from services.web.times import api_time
from shared.grades import is_withheld
from shared.models import Essay, Grade
from shared.prompts.rubric import Rubric

SOURCE_NAMES = {"model": "模型", "teacher": "教师"}


@dataclass(frozen=True)
class DimensionRow:
    key: str
    name: str
    score: int | None
    max: int | None
    band: str
    evidence: list[str]


@dataclass
class EssayView:
    essay: Essay
    grade: Grade | None
    history: list[Grade]
    text_markup: Markup
    errors: list[MarkedError]
    dimensions: list[DimensionRow] = field(default_factory=list)


def _evidence(grade: Grade, key: str) -> list[str]:
    value = (grade.evidence or {}).get(key, [])
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


def build_essay_view(session: Session, essay: Essay, rubric: Rubric | None) -> EssayView:
    history = list(session.scalars(
        select(Grade).where(Grade.essay_id == essay.id).order_by(Grade.version)
        .options(selectinload(Grade.errors), selectinload(Grade.deductions), selectinload(Grade.author))
    ))
    grade = history[-1] if history else None
    markup, errors = highlight(essay.text, grade.errors if grade else [])
    view = EssayView(essay, grade, history, markup, errors)
    if grade is None:
        return view
    if rubric is not None:
        keys = [(dim.key, dim.name, dim.max) for dim in rubric.dimensions]
    else:
        keys = [(key, key, None) for key in grade.dimension_scores]
    for key, name, maximum in keys:
        score = grade.dimension_scores.get(key)
        view.dimensions.append(DimensionRow(
            key, name, int(score) if score is not None else None, maximum, str(grade.bands.get(key, "")),
            _evidence(grade, key),
        ))
    return view


def grade_json(grade: Grade) -> dict[str, Any]:
    return {
        "version": grade.version, "source": str(grade.source), "created_at": api_time(grade.created_at),
        "created_by": grade.created_by, "reason": grade.reason, "rubric_id": grade.rubric_id,
        "rubric_version": grade.rubric_version, "dimension_scores": grade.dimension_scores, "bands": grade.bands,
        "evidence": grade.evidence, "raw_total": grade.raw_total, "total": grade.total, "caps": grade.caps,
        "comment": grade.comment, "model_name": grade.model_name, "confidence": grade.confidence,
        "reading": grade.reading,
        # Withheld (待复核): the model's proposal for the teacher to confirm or override, not a final score.
        "needs_review": is_withheld(grade),
        "errors": [
            {"type": e.type, "start": e.start_offset, "end": e.end_offset, "original": e.original,
             "suggestion": e.suggestion, "explanation": e.explanation, "origin": e.origin}
            for e in grade.errors
        ],
        "deductions": [{"rule": d.rule, "points": d.points, "detail": d.detail} for d in grade.deductions],
    }


def essay_json(view: EssayView) -> dict[str, Any]:
    essay = view.essay
    return {
        "id": essay.id, "assignment_id": essay.assignment_id, "student_id": essay.student_id,
        "student_name": essay.student.name, "student_number": essay.student.student_number,
        "status": str(essay.status), "failure_reason": essay.failure_reason, "flags": list(essay.flags or []),
        "title": essay.title, "text": essay.text, "char_count": essay.char_count,
        "source_filename": essay.source_filename,
        "grade": grade_json(view.grade) if view.grade else None,
        "history": [
            {"version": g.version, "source": str(g.source), "total": g.total, "created_by": g.created_by,
             "reason": g.reason, "created_at": api_time(g.created_at)}
            for g in view.history
        ],
    }
