"""The grade that counts: the latest version per essay (a teacher's override or regrade supersedes).

A model grade with ``needs_review`` (the essay was flagged for prompt injection) is withheld: it is the latest
version but not a final score until a teacher confirms or overrides it (``final_grades``, ``final_grade_ids``).
``final_grades`` also holds back the model grade of an essay that 双评 selected and that awaits its second
reading (``shared.double_marking``); the school-wide SQL of ``final_grade_ids`` does not."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from shared.double_marking import awaiting_second_read
from shared.models import Grade, GradeSource


def latest_grade_ids() -> Select[tuple[int]]:
    """A subquery-able select of the id of each essay's highest grade version."""
    ranked = (
        select(Grade.id, func.row_number().over(partition_by=Grade.essay_id, order_by=Grade.version.desc()).label("rn"))
        .subquery()
    )
    return select(ranked.c.id).where(ranked.c.rn == 1)


def final_grade_ids() -> Select[tuple[int]]:
    """``latest_grade_ids`` without withheld grades: what reports may count."""
    return select(Grade.id).where(Grade.id.in_(latest_grade_ids()), Grade.needs_review.is_(False))


def is_withheld(grade: Grade) -> bool:
    """A model score held back for a teacher's review (待复核)."""
    return grade.source == GradeSource.model and bool(grade.needs_review)


def final_grades(session: Session, essay_ids: Sequence[int]) -> dict[int, Grade]:
    """``effective_grades`` less the withheld ones: an essay whose latest grade awaits review, or whose model grade
    awaits its 双评 second reading, has no final score."""
    grades = {essay_id: grade for essay_id, grade in effective_grades(session, essay_ids).items()
              if not is_withheld(grade)}
    waiting = awaiting_second_read(session, [e for e, g in grades.items() if g.source == GradeSource.model])
    return {essay_id: grade for essay_id, grade in grades.items() if essay_id not in waiting}


def effective_grades(session: Session, essay_ids: Sequence[int]) -> dict[int, Grade]:
    """Latest grade per essay for the given essays, with errors and deductions loaded (no N+1)."""
    if not essay_ids:
        return {}
    grades = session.scalars(
        select(Grade)
        .where(Grade.essay_id.in_(list(essay_ids)), Grade.id.in_(latest_grade_ids()))
        .options(selectinload(Grade.errors), selectinload(Grade.deductions))
    ).all()
    return {grade.essay_id: grade for grade in grades}


def latest_teacher_grades(session: Session, essay_ids: Sequence[int]) -> dict[int, Grade]:
    """Each essay's latest grade written by a teacher (an override or a second reading), where there is one."""
    if not essay_ids:
        return {}
    ranked = (
        select(Grade.id, func.row_number().over(partition_by=Grade.essay_id, order_by=Grade.version.desc()).label("rn"))
        .where(Grade.essay_id.in_(list(essay_ids)), Grade.source == GradeSource.teacher)
        .subquery()
    )
    grades = session.scalars(select(Grade).where(Grade.id.in_(select(ranked.c.id).where(ranked.c.rn == 1)))).all()
    return {grade.essay_id: grade for grade in grades}
