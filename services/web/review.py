"""A teacher's review of graded essays: override scores or comment, accept flags, regrade.

An override adds a new Grade version (source=teacher) and keeps every earlier one; a regrade puts the
essay back in the queue with a conditional UPDATE so the worker writes the next version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from services.web.actor import Actor
from services.web.numbers import ascii_int
from shared.models import (
    Deduction,
    DoubleMarkCase,
    ErrorAnnotation,
    Essay,
    EssayStatus,
    Grade,
    GradeSource,
    abandoned_claim,
)
from shared.models.base import utcnow
from shared.prompts.rubric import Rubric

logger = logging.getLogger(__name__)

REGRADABLE = (EssayStatus.graded, EssayStatus.failed)
MAX_REASON_CHARS = 1000
MAX_COMMENT_CHARS = 2000


class ReviewError(ValueError):
    """Input a teacher must correct; the message is in Chinese."""


def latest_grade(session: Session, essay_id: int) -> Grade | None:
    return session.scalar(select(Grade).where(Grade.essay_id == essay_id).order_by(Grade.version.desc()).limit(1))


def parse_scores(rubric: Rubric, raw: Mapping[str, object]) -> dict[str, int]:
    """Every dimension's score as an integer within 0..max (strings from a form or ints from JSON)."""
    scores: dict[str, int] = {}
    problems: list[str] = []
    for dim in rubric.dimensions:
        value = raw.get(dim.key)
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            number = ascii_int(value)
        if number is None or not 0 <= number <= dim.max:
            problems.append(f"{dim.name}的分数必须是 0 到 {dim.max} 之间的整数。")
        else:
            scores[dim.key] = number
    if problems:
        raise ReviewError(" ".join(problems))
    return scores


def override_grade(
    session: Session, actor: Actor, essay: Essay, rubric: Rubric, *, scores: Mapping[str, int],
    comment: str | None, reason: str, reading: str | None = None, total: int | None = None,
    action: str = "grade.override",
) -> Grade:
    """Add a teacher version: new scores (and comment), the previous version's errors and deductions copied,
    total = dimension scores + deductions clamped to [0, rubric total]. 双评 passes ``reading`` (second, third,
    arbitration, final), its own audit ``action`` and, for the final version, the ``total`` the rubric's rule formed."""
    reason = reason.strip()
    if not reason:
        raise ReviewError("请填写修改理由。")
    if len(reason) > MAX_REASON_CHARS or (comment is not None and len(comment) > MAX_COMMENT_CHARS):
        raise ReviewError(f"修改理由不超过 {MAX_REASON_CHARS} 字，评语不超过 {MAX_COMMENT_CHARS} 字。")
    previous = latest_grade(session, essay.id)
    dimension_scores = {dim.key: int(scores[dim.key]) for dim in rubric.dimensions}
    deductions = list(previous.deductions) if previous else []
    raw_total = sum(dimension_scores.values())
    if total is None:
        total = min(max(raw_total + sum(d.points for d in deductions), 0), rubric.total)
    version = (session.scalar(select(func.max(Grade.version)).where(Grade.essay_id == essay.id)) or 0) + 1
    grade = Grade(
        essay_id=essay.id, version=version, rubric_id=previous.rubric_id if previous else rubric.id,
        rubric_version=previous.rubric_version if previous else rubric.version,
        prompt_version=previous.prompt_version if previous else None,
        dimension_scores=dimension_scores,
        bands={dim.key: dim.band_for(dimension_scores[dim.key]).name for dim in rubric.dimensions},
        evidence=dict(previous.evidence) if previous else {}, raw_total=raw_total, total=total, caps=[],
        comment=comment.strip() if comment is not None else (previous.comment if previous else ""),
        source=GradeSource.teacher, created_by=actor.user_id, reason=reason, reading=reading,
    )
    if previous is not None:
        grade.errors = [
            ErrorAnnotation(type=e.type, start_offset=e.start_offset, end_offset=e.end_offset, original=e.original,
                            suggestion=e.suggestion, explanation=e.explanation, origin=e.origin)
            for e in previous.errors
        ]
    grade.deductions = [Deduction(rule=d.rule, points=d.points, detail=d.detail) for d in deductions]
    session.add(grade)
    if essay.status == EssayStatus.failed:
        session.execute(
            update(Essay).where(Essay.id == essay.id, Essay.status == EssayStatus.failed)
            .values(status=EssayStatus.graded, failure_reason=None)
        )
    session.flush()
    actor.record(
        session, action, object_type="essay", object_id=essay.id, grade_version=version,
        previous_version=previous.version if previous else None, previous_total=previous.total if previous else None,
        total=total, scores=dimension_scores, comment_changed=comment is not None,
    )
    return grade


def accept_flags(session: Session, actor: Actor, essay: Essay) -> int:
    """Clear an essay's flags after the teacher has read them; returns how many were cleared."""
    count = len(essay.flags or [])
    essay.flags = []
    actor.record(session, "essay.accept_flags", object_type="essay", object_id=essay.id, flags=count)
    session.flush()
    return count


def requeue(session: Session, actor: Actor, essay_ids: Sequence[int], *, assignment_id: int) -> list[tuple[int, int]]:
    """Put graded or failed essays, and essays whose grading task is gone, back to `queued` (conditional UPDATE);
    returns (id, chars) of those moved. An essay with a 双评 case is never regraded by the model: its readings
    stand (a new model reading would become the grade that counts)."""
    if not essay_ids:
        return []
    moved = session.execute(
        update(Essay)
        .where(Essay.id.in_(list(essay_ids)), or_(Essay.status.in_(REGRADABLE), abandoned_claim(utcnow())),
               Essay.id.not_in(select(DoubleMarkCase.essay_id)))
        .values(status=EssayStatus.queued, attempts=0, claim_token=None, lease_until=None, failure_reason=None,
                finished_at=None)
        .returning(Essay.id, Essay.char_count)
    ).all()
    for essay_id, _chars in moved:
        actor.record(session, "essay.regrade", object_type="essay", object_id=essay_id, assignment_id=assignment_id)
    return [(row[0], row[1]) for row in moved]
