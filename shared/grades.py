"""The grade that counts: the latest version per essay (a teacher's override or regrade supersedes)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from shared.models import Grade, GradeSource


def latest_grade_ids() -> Select[tuple[int]]:
    """A subquery-able select of the id of each essay's highest grade version."""
    ranked = (
        select(Grade.id, func.row_number().over(partition_by=Grade.essay_id, order_by=Grade.version.desc()).label("rn"))
        .subquery()
    )
    return select(ranked.c.id).where(ranked.c.rn == 1)


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
