"""Bulk reads for reports: a fixed number of queries per report (no N+1), streaming for the school.

Only effective grades count (``shared.grades``: the latest version per essay, so a teacher's override
supersedes the model's grade). Results are plain frozen dataclasses so builders never touch the ORM.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from services.worker.jobs import DeductionItem
from shared.double_marking import awaiting_second_read
from shared.grades import final_grade_ids, final_grades
from shared.models import (
    Assignment,
    Classroom,
    DoubleMarkingMode,
    ErrorAnnotation,
    Essay,
    EssayStatus,
    Grade,
    School,
    Student,
    TrainingPlan,
    User,
)

SCHOOL_STREAM_BATCH = 5000
_NEWEST_PLAN_FIRST = (TrainingPlan.created_at.desc(), TrainingPlan.id.desc())


@dataclass(frozen=True)
class ErrorItem:
    type: str
    original: str
    suggestion: str
    explanation: str


@dataclass(frozen=True)
class GradeFacts:
    grade_id: int
    version: int
    source: str
    scores: dict[str, int]
    total: int
    comment: str
    errors: tuple[ErrorItem, ...]
    deductions: tuple[DeductionItem, ...]

    @classmethod
    def from_grade(cls, grade: Grade) -> GradeFacts:
        return cls(
            grade_id=grade.id,
            version=grade.version,
            source=str(grade.source),
            scores={str(k): int(v) for k, v in (grade.dimension_scores or {}).items()},
            total=grade.total,
            comment=grade.comment or "",
            errors=tuple(ErrorItem(e.type, e.original, e.suggestion, e.explanation) for e in grade.errors),
            deductions=tuple(DeductionItem(d.rule, d.points, d.detail) for d in grade.deductions),
        )


@dataclass(frozen=True)
class AssignmentInfo:
    id: int
    title: str
    created_at: datetime
    rubric_id: str
    rubric_version: str
    required_length: int
    classroom_id: int
    classroom_name: str
    teacher_name: str
    school_id: int
    school_name: str


@dataclass(frozen=True)
class RosterEssay:
    """A student of the class and their essay for the assignment (None when nothing was handed in)."""

    student_id: int
    student_number: str
    name: str
    essay_id: int | None
    status: str | None
    char_count: int | None
    flags: tuple[str, ...]
    failure_reason: str | None
    grade: GradeFacts | None


@dataclass(frozen=True)
class PlanRow:
    student_id: int
    focus_areas: list[Any]
    narrative: str
    model_name: str | None
    created_at: datetime


@dataclass(frozen=True)
class HistoryEssay:
    """One graded essay of a student's history, with its effective grade."""

    essay_id: int
    student_id: int
    assignment_id: int
    assignment_created_at: datetime
    rubric_id: str
    rubric_version: str
    grade: GradeFacts


def assignment_info(session: Session, assignment_id: int) -> AssignmentInfo | None:
    row = session.execute(
        select(Assignment, Classroom.name, User.display_name, School.id, School.name)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .join(School, Classroom.school_id == School.id)
        .join(User, Classroom.teacher_id == User.id)
        .where(Assignment.id == assignment_id)
    ).one_or_none()
    if row is None:
        return None
    assignment, classroom_name, teacher_name, school_id, school_name = row
    return AssignmentInfo(
        id=assignment.id, title=assignment.title, created_at=assignment.created_at, rubric_id=assignment.rubric_id,
        rubric_version=assignment.rubric_version, required_length=assignment.required_length,
        classroom_id=assignment.classroom_id, classroom_name=classroom_name, teacher_name=teacher_name,
        school_id=school_id, school_name=school_name,
    )


def roster_essays(session: Session, assignment_id: int, classroom_id: int) -> list[RosterEssay]:
    """Every essay of the assignment and every roster student without one, in student-number order."""
    essays = session.execute(
        select(
            Student.id, Student.student_number, Student.name, Essay.id, Essay.status, Essay.char_count, Essay.flags,
            Essay.failure_reason,
        )
        .join(Essay, Essay.student_id == Student.id)
        .where(Essay.assignment_id == assignment_id)
    ).all()
    grades = final_grades(session, [row[3] for row in essays])
    waiting = awaiting_second_read(session, [row[3] for row in essays])  # 双评: no final score before the second
    handed_in = {row[0] for row in essays}
    missing = session.execute(
        select(Student.id, Student.student_number, Student.name).where(Student.classroom_id == classroom_id)
    ).all()
    rows = [
        RosterEssay(
            student_id=sid, student_number=number or "", name=name, essay_id=essay_id,
            status="second_read" if essay_id in waiting else str(status),
            char_count=chars, flags=tuple(str(f) for f in (flags or [])), failure_reason=reason,
            grade=GradeFacts.from_grade(grades[essay_id]) if essay_id in grades else None,
        )
        for sid, number, name, essay_id, status, chars, flags, reason in essays
    ]
    rows += [
        RosterEssay(sid, number or "", name, None, None, None, (), None, None)
        for sid, number, name in missing
        if sid not in handed_in
    ]
    return sorted(rows, key=lambda r: (r.student_number, r.student_id))


def latest_plans(session: Session, student_ids: Sequence[int]) -> dict[int, PlanRow]:
    """Each student's most recent training plan, in one query."""
    if not student_ids:
        return {}
    ranked = (
        select(
            TrainingPlan.student_id, TrainingPlan.focus_areas, TrainingPlan.narrative, TrainingPlan.model_name,
            TrainingPlan.created_at,
            func.row_number()
            .over(partition_by=TrainingPlan.student_id, order_by=_NEWEST_PLAN_FIRST)
            .label("rn"),
        )
        .where(TrainingPlan.student_id.in_(list(student_ids)))
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.student_id, ranked.c.focus_areas, ranked.c.narrative, ranked.c.model_name, ranked.c.created_at)
        .where(ranked.c.rn == 1)
    ).all()
    return {row[0]: PlanRow(row[0], list(row[1] or []), row[2] or "", row[3], row[4]) for row in rows}


def class_history(session: Session, classroom_id: int) -> list[HistoryEssay]:
    """Every graded essay (effective grade) of every student in the class, across all assignments."""
    essays = session.execute(
        select(
            Essay.id, Essay.student_id, Essay.assignment_id, Assignment.created_at, Assignment.rubric_id,
            Assignment.rubric_version,
        )
        .join(Student, Essay.student_id == Student.id)
        .join(Assignment, Essay.assignment_id == Assignment.id)
        .where(Student.classroom_id == classroom_id)
    ).all()
    grades = final_grades(session, [row[0] for row in essays])
    return [
        HistoryEssay(essay_id, student_id, assignment_id, created_at, rubric_id, version,
                     GradeFacts.from_grade(grades[essay_id]))
        for essay_id, student_id, assignment_id, created_at, rubric_id, version in essays
        if essay_id in grades
    ]


def student_classroom(session: Session, student_id: int) -> int | None:
    return session.scalar(select(Student.classroom_id).where(Student.id == student_id))


# --- school-wide -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassroomInfo:
    id: int
    name: str
    teacher_id: int
    teacher_name: str
    student_count: int


@dataclass(frozen=True)
class SchoolAssignment:
    id: int
    classroom_id: int
    title: str
    created_at: datetime
    rubric_id: str
    rubric_version: str


def school_name(session: Session, school_id: int) -> str | None:
    return session.scalar(select(School.name).where(School.id == school_id))


def school_classrooms(session: Session, school_id: int) -> list[ClassroomInfo]:
    counts = (
        select(Student.classroom_id, func.count(Student.id).label("n")).group_by(Student.classroom_id).subquery()
    )
    rows = session.execute(
        select(Classroom.id, Classroom.name, Classroom.teacher_id, User.display_name, func.coalesce(counts.c.n, 0))
        .join(User, Classroom.teacher_id == User.id)
        .outerjoin(counts, counts.c.classroom_id == Classroom.id)
        .where(Classroom.school_id == school_id)
        .order_by(Classroom.name, Classroom.id)
    ).all()
    return [ClassroomInfo(*row) for row in rows]


def school_assignments(session: Session, school_id: int) -> list[SchoolAssignment]:
    rows = session.execute(
        select(
            Assignment.id, Assignment.classroom_id, Assignment.title, Assignment.created_at, Assignment.rubric_id,
            Assignment.rubric_version,
        )
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Classroom.school_id == school_id)
        .order_by(Assignment.created_at, Assignment.id)
    ).all()
    return [SchoolAssignment(*row) for row in rows]


def _effective_in_school(session: Session, columns: Sequence[Any], school_id: int) -> Select[Any]:
    """``columns`` over the final grades of a school's essays (a model grade awaiting its 双评 second reading is
    not final: those essays, few and only in double-marked assignments, are left out by id)."""
    statement = (
        select(*columns)
        .select_from(Grade)
        .join(Essay, Grade.essay_id == Essay.id)
        .join(Assignment, Essay.assignment_id == Assignment.id)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Classroom.school_id == school_id, Grade.id.in_(final_grade_ids()))
    )
    double_marked = session.scalars(
        select(Essay.id).join(Assignment, Essay.assignment_id == Assignment.id)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Classroom.school_id == school_id, Assignment.double_marking != DoubleMarkingMode.off,
               Essay.status == EssayStatus.graded)
    ).all()
    waiting = awaiting_second_read(session, double_marked)
    return statement.where(Grade.essay_id.not_in(sorted(waiting))) if waiting else statement


def stream_school_grades(
    session: Session, school_id: int, batch_size: int = SCHOOL_STREAM_BATCH
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(assignment_id, total, dimension scores) of every effective grade in the school, streamed.

    Plain columns through a server-side cursor (``yield_per``): memory stays flat however many grades.
    """
    statement = _effective_in_school(session, (Essay.assignment_id, Grade.total, Grade.dimension_scores), school_id)
    result = session.execute(statement.execution_options(yield_per=batch_size))
    try:
        for assignment_id, total, scores in result:
            yield assignment_id, total, scores or {}
    finally:
        result.close()


def school_error_counts(session: Session, school_id: int) -> list[tuple[int, str, int]]:
    """(classroom_id, error type, count) over the effective grades of the school, counted by the database."""
    graded = _effective_in_school(session, (Grade.id, Assignment.classroom_id), school_id).subquery()
    rows = session.execute(
        select(graded.c.classroom_id, ErrorAnnotation.type, func.count(ErrorAnnotation.id))
        .join(graded, ErrorAnnotation.grade_id == graded.c.id)
        .group_by(graded.c.classroom_id, ErrorAnnotation.type)
    ).all()
    return [(int(c), str(t), int(n)) for c, t, n in rows]


def school_status_counts(session: Session, school_id: int) -> list[tuple[int, str, int]]:
    """(assignment_id, essay status, count) for every assignment of the school."""
    rows = session.execute(
        select(Essay.assignment_id, Essay.status, func.count(Essay.id))
        .join(Assignment, Essay.assignment_id == Assignment.id)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Classroom.school_id == school_id)
        .group_by(Essay.assignment_id, Essay.status)
    ).all()
    return [(int(a), str(s), int(n)) for a, s, n in rows]
