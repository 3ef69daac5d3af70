"""Erasing a student, a class or a school: every row about them, in foreign-key order, in the caller's transaction.

Rows go with explicit bulk DELETEs (children first), so the result is the same on SQLite and PostgreSQL and
does not depend on ORM cascades. Audit rows are never touched: they hold ids only and are append-only.
Stored report files are returned rather than deleted, so the caller removes them only after the commit.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import ColumnElement, Select, delete, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from shared.models import (
    Assignment,
    Classroom,
    Deduction,
    ErrorAnnotation,
    Essay,
    Grade,
    ReportJob,
    School,
    Student,
    TrainingPlan,
    User,
)

logger = logging.getLogger(__name__)


class ErasureRefused(ValueError):
    """The erasure would break another school's data; the message says why (in Chinese, for the page)."""


@dataclass
class Erased:
    """What an erasure removed: rows per table, the report files to delete, and the ids it was about."""

    counts: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    assignment_ids: list[int] = field(default_factory=list)
    student_ids: list[int] = field(default_factory=list)

    def audit_details(self) -> dict[str, int]:
        """Counts only: safe to keep in the audit log after the rows are gone."""
        return {table: count for table, count in sorted(self.counts.items()) if count}


def _delete(session: Session, erased: Erased, table: str, statement: object) -> None:
    result = session.execute(statement.execution_options(synchronize_session="fetch"))  # type: ignore[attr-defined]
    erased.counts[table] += result.rowcount or 0


def erase_essays(session: Session, erased: Erased, essay_ids: Select[tuple[int]]) -> None:
    """Essays chosen by a subquery of ids, with their grades, error annotations and deductions."""
    ids = list(session.scalars(essay_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        grades = select(Grade.id).where(Grade.essay_id.in_(chunk))
        _delete(session, erased, "error_annotations",
                delete(ErrorAnnotation).where(ErrorAnnotation.grade_id.in_(grades)))
        _delete(session, erased, "deductions", delete(Deduction).where(Deduction.grade_id.in_(grades)))
        _delete(session, erased, "grades", delete(Grade).where(Grade.essay_id.in_(chunk)))
        _delete(session, erased, "essays", delete(Essay).where(Essay.id.in_(chunk)))


def erase_report_jobs(session: Session, erased: Erased, where: ColumnElement[bool]) -> None:
    """Report jobs matching ``where``; their files are noted for removal after the commit."""
    erased.files += [path for path in session.scalars(select(ReportJob.file_path).where(where)) if path]
    _delete(session, erased, "report_jobs", delete(ReportJob).where(where))


def erase_student(session: Session, student_id: int) -> Erased | None:
    """One student: their essays and grades, training plans, and the class workbooks that list them."""
    student = session.get(Student, student_id)
    if student is None:
        return None
    erased = Erased(student_ids=[student_id])
    erased.assignment_ids = list(
        session.scalars(select(Assignment.id).where(Assignment.classroom_id == student.classroom_id))
    )
    erase_essays(session, erased, select(Essay.id).where(Essay.student_id == student_id))
    _delete(session, erased, "training_plans", delete(TrainingPlan).where(TrainingPlan.student_id == student_id))
    # A class workbook has a row per student of the class; it can be built again without them.
    erase_report_jobs(session, erased, or_(
        ReportJob.assignment_id.in_(erased.assignment_ids),
        (ReportJob.classroom_id == student.classroom_id) & ReportJob.assignment_id.is_(None),
    ))
    _delete(session, erased, "students", delete(Student).where(Student.id == student_id))
    return erased


def _erase_classrooms(session: Session, erased: Erased, classroom_ids: list[int]) -> None:
    assignments = select(Assignment.id).where(Assignment.classroom_id.in_(classroom_ids))
    students = select(Student.id).where(Student.classroom_id.in_(classroom_ids))
    erased.assignment_ids += list(session.scalars(assignments))
    erased.student_ids += list(session.scalars(students))
    erase_essays(session, erased, select(Essay.id).where(
        or_(Essay.assignment_id.in_(assignments), Essay.student_id.in_(students))
    ))
    _delete(session, erased, "training_plans", delete(TrainingPlan).where(TrainingPlan.student_id.in_(students)))
    erase_report_jobs(session, erased, or_(
        ReportJob.classroom_id.in_(classroom_ids), ReportJob.assignment_id.in_(assignments)
    ))
    _delete(session, erased, "assignments", delete(Assignment).where(Assignment.classroom_id.in_(classroom_ids)))
    _delete(session, erased, "students", delete(Student).where(Student.classroom_id.in_(classroom_ids)))
    _delete(session, erased, "classrooms", delete(Classroom).where(Classroom.id.in_(classroom_ids)))


def erase_classroom(session: Session, classroom_id: int) -> Erased | None:
    """A class: its roster, assignments, essays, grades, training plans and reports."""
    if session.get(Classroom, classroom_id) is None:
        return None
    erased = Erased()
    _erase_classrooms(session, erased, [classroom_id])
    return erased


def erase_school(session: Session, school_id: int) -> Erased | None:
    """A school: every class (as above), its school reports and its user accounts, then the school itself."""
    if session.get(School, school_id) is None:
        return None
    staff = select(User.id).where(User.school_id == school_id)
    elsewhere = session.scalars(
        select(Classroom.name).where(Classroom.teacher_id.in_(staff), Classroom.school_id != school_id)
    ).all()
    if elsewhere:
        names = "、".join(elsewhere[:5])
        raise ErasureRefused(f"本校教师仍是其他学校班级的任课教师（{names}），请先更换这些班级的教师。")
    erased = Erased()
    _erase_classrooms(session, erased, list(session.scalars(
        select(Classroom.id).where(Classroom.school_id == school_id)
    )))
    erase_report_jobs(session, erased, ReportJob.school_id == school_id)
    _delete(session, erased, "users", delete(User).where(User.school_id == school_id))
    _delete(session, erased, "schools", delete(School).where(School.id == school_id))
    return erased


def remove_stored_files(paths: Iterable[str], data_dir: Path) -> int:
    """Delete stored files (a relative path is relative to ``data_dir``); returns how many were there."""
    removed = 0
    for stored in paths:
        path = Path(stored)
        path = path if path.is_absolute() else data_dir / path
        try:
            if path.is_file():
                path.unlink()
                removed += 1
        except OSError:
            logger.exception("could not delete stored file %s", path)
    return removed


def flush_deleted_pages(sessions: sessionmaker[Session]) -> None:
    """On SQLite, copy the overwritten pages into the database file and empty the write-ahead log.

    With ``secure_delete`` the deleted rows are zeroed, but the log still holds the old page images until a
    checkpoint. PostgreSQL reclaims dead rows with (auto)vacuum; backups keep them until they rotate.
    """
    with sessions() as session:
        if session.get_bind().dialect.name != "sqlite":
            return
        busy, _, _ = session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        if busy:
            logger.warning("the SQLite checkpoint after an erasure was blocked by a reader; it completes later")
