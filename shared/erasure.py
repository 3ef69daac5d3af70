"""Erasing a student, a class or a school: every row about them, then the files that mention them.

Rows go with explicit bulk DELETEs (children first), so the result is the same on SQLite and PostgreSQL and
does not depend on ORM cascades. Audit rows are never touched: they hold ids only and are append-only.
``erase`` is the whole of it, for the admin pages and ``yuejuan delete``: the rows and an audit row commit
first (all or nothing), then report files, upload previews and (for a school) its rubric files are removed,
so a failed transaction never leaves rows pointing at missing files.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from shared import audit
from shared.adapters import adapter_path, adapters_trained_on
from shared.models import (
    Adapter,
    AdapterStudent,
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
    transaction,
)
from shared.storage import remove_stored_files, school_rubric_dir
from shared.upload_previews import discard_previews_about

logger = logging.getLogger(__name__)

Target = Literal["student", "classroom", "school"]
ERASE_ACTION = "privacy.erase"


class ErasureRefused(ValueError):
    """The erasure would break another school's data; the message says why (in Chinese, for the page)."""


@dataclass
class Erased:
    """What an erasure removed: rows per table, the report files to delete, and the ids it was about."""

    counts: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    assignment_ids: list[int] = field(default_factory=list)
    student_ids: list[int] = field(default_factory=list)
    # LoRA adapters trained on these students' essays: listed for the admin to retrain or delete (not deleted here).
    adapter_ids: list[int] = field(default_factory=list)
    adapter_names: list[str] = field(default_factory=list)  # a school's own adapters, whose files go with it

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


def school_reports_of(classroom_ids: Select[tuple[int]]) -> ColumnElement[bool]:
    """School-level report jobs (no class, no assignment) of the schools these classes belong to: a school workbook
    names every class and its averages (for a small class, close to a student's own scores)."""
    return (
        ReportJob.school_id.in_(select(Classroom.school_id).where(Classroom.id.in_(classroom_ids)))
        & ReportJob.classroom_id.is_(None) & ReportJob.assignment_id.is_(None)
    )


def erase_student(session: Session, student_id: int) -> Erased | None:
    """One student: their essays and grades, training plans, the class workbooks that list them and the school
    workbooks that count them."""
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
    # The school workbooks counted the student's scores: they go too and are generated again on request.
    erase_report_jobs(session, erased, school_reports_of(select(Classroom.id).where(
        Classroom.id == student.classroom_id)))
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
        ReportJob.classroom_id.in_(classroom_ids), ReportJob.assignment_id.in_(assignments),
        school_reports_of(select(Classroom.id).where(Classroom.id.in_(classroom_ids))),
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
    # The school's adapters learned from its essays only: they go with it, rows now and files after the commit.
    adapters = select(Adapter.id).where(Adapter.school_id == school_id)
    erased.adapter_names = list(session.scalars(select(Adapter.name).where(Adapter.school_id == school_id)))
    _delete(session, erased, "adapter_students", delete(AdapterStudent).where(AdapterStudent.adapter_id.in_(adapters)))
    session.execute(update(Adapter).where(Adapter.school_id == school_id).values(previous_id=None))
    _delete(session, erased, "adapters", delete(Adapter).where(Adapter.school_id == school_id))
    _delete(session, erased, "users", delete(User).where(User.school_id == school_id))
    _delete(session, erased, "schools", delete(School).where(School.id == school_id))
    return erased


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


ERASERS: dict[Target, Callable[[Session, int], Erased | None]] = {
    "student": erase_student,
    "classroom": erase_classroom,
    "school": erase_school,
}


def erase(
    sessions: sessionmaker[Session], data_dir: Path, target: Target, object_id: int, *, actor: str,
    actor_id: int | None = None, ip: str | None = None,
) -> Erased | None:
    """Erase one object and everything about it, rows and files; None if it does not exist.

    Raises ``ErasureRefused``. The audit row (``actor``, ids and row counts) commits with the deletions; the
    counts of removed files (``report_files``, ``upload_previews``) are in the result only.
    """
    with transaction(sessions) as session:
        erased = ERASERS[target](session, object_id)
        if erased is None:
            return None
        erased.adapter_ids = [a.id for a in adapters_trained_on(session, erased.student_ids)]
        audit.record(session, ERASE_ACTION, actor=actor, actor_id=actor_id, object_type=target,
                     object_id=object_id, ip=ip, **erased.audit_details(),
                     **({"adapters_trained_on": erased.adapter_ids} if erased.adapter_ids else {}))
    flush_deleted_pages(sessions)
    erased.counts["report_files"] = remove_stored_files(data_dir, erased.files)
    erased.counts["upload_previews"] = discard_previews_about(
        data_dir, assignment_ids=erased.assignment_ids, student_ids=erased.student_ids
    )
    if target == "school":
        rubrics = school_rubric_dir(data_dir, object_id)
        if rubrics.is_dir():
            shutil.rmtree(rubrics)
        for name in erased.adapter_names:
            shutil.rmtree(adapter_path(data_dir, name), ignore_errors=True)
    logger.info("%s erased %s %s: %s", actor, target, object_id, dict(erased.counts))
    return erased


def what_goes(session: Session, target: Target, object_id: int) -> dict[str, int]:
    """What an erasure of the object would remove, for the confirmation page: essays, and for a class its
    students, for a school its classes and accounts."""
    essays = select(func.count()).select_from(Essay)
    if target == "student":
        return {"essays": session.scalar(essays.where(Essay.student_id == object_id)) or 0}
    classrooms = select(Classroom.id).where(
        Classroom.id == object_id if target == "classroom" else Classroom.school_id == object_id
    )
    assignments = select(Assignment.id).where(Assignment.classroom_id.in_(classrooms))
    counts = {"essays": session.scalar(essays.where(Essay.assignment_id.in_(assignments))) or 0}
    if target == "classroom":
        students = select(func.count()).select_from(Student).where(Student.classroom_id == object_id)
        return {"students": session.scalar(students) or 0, **counts}
    users = select(func.count()).select_from(User).where(User.school_id == object_id)
    classes = select(func.count()).select_from(classrooms.subquery())
    return {"classrooms": session.scalar(classes) or 0, **counts, "users": session.scalar(users) or 0}
