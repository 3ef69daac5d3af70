"""The one place tests build rows: a school, a user with a role, a classroom, students, an assignment, essays,
grade versions, training plans and report jobs.

Each builder adds to the caller's session and flushes, so the row comes back with its id; the caller owns the
transaction (``make_report_job`` alone commits its own). Defaults are the ones most tests share; anything else a
model accepts goes through ``**columns``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import (
    Assignment,
    Classroom,
    Deduction,
    ErrorAnnotation,
    Essay,
    EssayStatus,
    Grade,
    GradeSource,
    JobStatus,
    ReportJob,
    Role,
    School,
    Student,
    TrainingPlan,
    User,
    transaction,
)

DIMS = ("content", "expression", "development")
READING_PROMPT = "以“读书”为题写一篇议论文。"

# (type, original, suggestion) or (type, original, suggestion, explanation)
ErrorSpec = tuple[str, str, str] | tuple[str, str, str, str]
# (rule, points, detail)
DeductionSpec = tuple[str, int, str]
RowT = TypeVar("RowT")


def _flushed(session: Session, row: RowT) -> RowT:
    session.add(row)
    session.flush()
    return row


def add_school(session: Session, name: str) -> School:
    return _flushed(session, School(name=name))


def add_user(
    session: Session, username: str, display_name: str, *, role: Role = Role.teacher, school_id: int | None = None,
    password_hash: str = "x", **columns: Any,
) -> User:
    """A user of ``role`` (school_id None for a sysadmin); ``password_hash="x"`` never signs in."""
    return _flushed(session, User(username=username, display_name=display_name, role=role, school_id=school_id,
                                  password_hash=password_hash, **columns))


def add_classroom(session: Session, school_id: int, teacher_id: int, name: str) -> Classroom:
    return _flushed(session, Classroom(school_id=school_id, teacher_id=teacher_id, name=name))


def add_students(session: Session, classroom_id: int, roster: Iterable[tuple[str, str | None]]) -> list[Student]:
    """One student per (name, student number), in roster order."""
    students = [Student(classroom_id=classroom_id, name=name, student_number=number) for name, number in roster]
    session.add_all(students)
    session.flush()
    return students


def add_student(session: Session, classroom_id: int, name: str, number: str | None = None) -> Student:
    return add_students(session, classroom_id, [(name, number)])[0]


def add_assignment(
    session: Session, classroom_id: int, *, title: str = "期中作文", prompt_text: str = READING_PROMPT,
    rubric_id: str = "gaokao-national", rubric_version: str = "2024.1", created_by: int | None = None,
    **columns: Any,
) -> Assignment:
    """An assignment (genre and required length default to the model's 议论文 and 800)."""
    return _flushed(session, Assignment(classroom_id=classroom_id, title=title, prompt_text=prompt_text,
                                        rubric_id=rubric_id, rubric_version=rubric_version, created_by=created_by,
                                        **columns))


def add_essays(
    session: Session, assignment_id: int, essays: Iterable[tuple[int, str]], *,
    status: EssayStatus = EssayStatus.queued, **columns: Any,
) -> list[Essay]:
    """One essay per (student id, text), all in ``status``; char_count is the text's length."""
    rows = [Essay(assignment_id=assignment_id, student_id=student_id, text=text, char_count=len(text), status=status,
                  **columns)
            for student_id, text in essays]
    session.add_all(rows)
    session.flush()
    return rows


def add_essay(
    session: Session, assignment_id: int, student_id: int, text: str, *,
    status: EssayStatus = EssayStatus.queued, **columns: Any,
) -> Essay:
    return add_essays(session, assignment_id, [(student_id, text)], status=status, **columns)[0]


def add_grade(
    session: Session,
    essay_id: int,
    scores: Sequence[int] | Mapping[str, int],
    *,
    version: int = 1,
    source: GradeSource = GradeSource.model,
    comment: str = "",
    errors: Sequence[ErrorSpec] = (),
    deductions: Sequence[DeductionSpec] = (),
    text: str | None = None,
    total: int | None = None,
    created_at: datetime | None = None,
    rubric_id: str = "gaokao-national",
    rubric_version: str = "2024.1",
    mark_graded: bool = True,
    **columns: Any,
) -> Grade:
    """A grade version written directly (no model), by default marking the essay graded (finished now).

    ``scores`` are by dimension, or in ``DIMS`` order; the total is the raw total plus the deductions unless given.
    An error's offsets are where its original first stands in ``text``, or 0 without a text.
    """
    by_dimension = dict(scores) if isinstance(scores, Mapping) else dict(zip(DIMS, scores, strict=True))
    raw = sum(by_dimension.values())
    values: dict[str, Any] = {"bands": {}, **columns}
    grade = Grade(
        essay_id=essay_id, version=version, rubric_id=rubric_id, rubric_version=rubric_version,
        dimension_scores=by_dimension, raw_total=raw,
        total=raw + sum(points for _, points, _ in deductions) if total is None else total, comment=comment,
        source=source, **values,
    )
    if created_at is not None:
        grade.created_at = created_at
    grade.errors = []
    for kind, original, suggestion, *explanation in errors:
        start = 0 if text is None else text.index(original)
        grade.errors.append(ErrorAnnotation(type=kind, start_offset=start, end_offset=start + len(original),
                                            original=original, suggestion=suggestion,
                                            explanation=explanation[0] if explanation else "", origin="model"))
    grade.deductions = [Deduction(rule=r, points=p, detail=d) for r, p, d in deductions]
    _flushed(session, grade)
    if mark_graded:
        session.execute(update(Essay).where(Essay.id == essay_id).values(status=EssayStatus.graded,
                                                                          finished_at=datetime.now(UTC)))
    return grade


def add_training_plan(session: Session, student_id: int, **columns: Any) -> TrainingPlan:
    return _flushed(session, TrainingPlan(student_id=student_id, **columns))


def write_report_file(data_dir: Path, name: str, content: str | bytes) -> Path:
    """A stand-in workbook at ``data_dir/reports/<name>.xlsx``."""
    path = data_dir / "reports" / f"{name}.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def add_report_job(
    session: Session, kind: str, *, status: JobStatus = JobStatus.queued, file: Path | None = None, **columns: Any,
) -> ReportJob:
    """A report job of ``kind`` (``file``: where its workbook was written)."""
    return _flushed(session, ReportJob(kind=kind, status=status, file_path=None if file is None else str(file),
                                       **columns))


def make_report_job(sessions: sessionmaker[Session], kind: str, **columns: Any) -> int:
    """A queued report job of ``kind`` in its own transaction; its id."""
    with transaction(sessions) as session:
        return add_report_job(session, kind, **columns).id
