"""Which essays 双评 selects, and which of those still await their second reading (shared by the web, which keeps
them blind, and the reports, which count no model score of theirs as final).

An essay is selected by its assignment's mode (all, a stable random share, or low-confidence and flagged essays)
once it has a model grade; it awaits its second reading until a ``DoubleMarkCase`` exists for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.confidence import is_low_confidence
from shared.models import Assignment, DoubleMarkCase, DoubleMarkingMode, Essay, EssayStatus, Grade, GradeSource


def in_sample(assignment_id: int, essay_id: int, share: int) -> bool:
    """A stable pseudo-random draw: the same essay is in or out of the sample on every page load."""
    digest = hashlib.sha256(f"double-marking:{assignment_id}:{essay_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < share


def needs_second_read(assignment: Assignment, essay: Essay, model_grade: Grade | None) -> bool:
    """Whether the assignment's mode selects this essay for a second reading (it must have a model grade)."""
    if model_grade is None or essay.status != EssayStatus.graded:
        return False
    mode = assignment.double_marking
    if mode == DoubleMarkingMode.all:
        return True
    if mode == DoubleMarkingMode.sample:
        return in_sample(assignment.id, essay.id, assignment.double_marking_share)
    if mode == DoubleMarkingMode.low_confidence:
        return bool(essay.flags) or is_low_confidence(model_grade.confidence, model_grade.dropped_quotes)
    return False


def latest_model_grades(session: Session, essay_ids: Sequence[int]) -> dict[int, Grade]:
    """Each essay's latest model grade (the first reading of 双评)."""
    grades: dict[int, Grade] = {}
    if not essay_ids:
        return grades
    for grade in session.scalars(select(Grade).where(Grade.essay_id.in_(list(essay_ids)),
                                                     Grade.source == GradeSource.model).order_by(Grade.version)):
        grades[grade.essay_id] = grade
    return grades


def awaiting_second_read(session: Session, essay_ids: Sequence[int]) -> set[int]:
    """Of ``essay_ids``, those selected for a second reading that nobody has given yet."""
    if not essay_ids:
        return set()
    rows = session.execute(
        select(Essay, Assignment).join(Assignment, Essay.assignment_id == Assignment.id)
        .where(Essay.id.in_(list(essay_ids)), Assignment.double_marking != DoubleMarkingMode.off)
    ).all()
    if not rows:
        return set()
    ids = [essay.id for essay, _ in rows]
    opened = set(session.scalars(select(DoubleMarkCase.essay_id).where(DoubleMarkCase.essay_id.in_(ids))))
    grades = latest_model_grades(session, ids)
    return {essay.id for essay, assignment in rows
            if essay.id not in opened and needs_second_read(assignment, essay, grades.get(essay.id))}
