"""Small helpers that create a school, teacher, class, roster and assignment for tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    Role,
    School,
    Student,
    User,
    transaction,
)

DIMS = ("content", "expression", "development")


@dataclass
class ClassFixture:
    school_id: int
    teacher_id: int
    classroom_id: int
    assignment_id: int
    student_ids: list[int]
    essay_ids: list[int]


def make_class(
    sessions: sessionmaker[Session],
    essays: list[str],
    *,
    tag: str,
    rubric_id: str = "gaokao-national",
    rubric_version: str = "2024.1",
    required_length: int = 800,
    student_names: list[str] | None = None,
) -> ClassFixture:
    """One school, one teacher, one class with a student per essay, one assignment with essays queued."""
    names = student_names or [f"学生{i:03d}" for i in range(len(essays))]
    with transaction(sessions) as session:
        school = School(name=f"测试中学{tag}")
        session.add(school)
        session.flush()
        teacher = User(
            username=f"teacher-{tag}", display_name="王老师", role=Role.teacher, password_hash="x",
            school_id=school.id,
        )
        session.add(teacher)
        session.flush()
        classroom = Classroom(school_id=school.id, teacher_id=teacher.id, name=f"高三{tag}班")
        session.add(classroom)
        session.flush()
        students = [
            Student(classroom_id=classroom.id, name=name, student_number=f"{tag}-{i:03d}")
            for i, name in enumerate(names)
        ]
        session.add_all(students)
        assignment = Assignment(
            classroom_id=classroom.id, title="期中作文", prompt_text="以“读书”为题写一篇议论文。", genre="议论文",
            rubric_id=rubric_id, rubric_version=rubric_version, required_length=required_length,
            created_by=teacher.id,
        )
        session.add(assignment)
        session.flush()
        rows = [
            Essay(
                assignment_id=assignment.id, student_id=student.id, text=text, char_count=len(text),
                status=EssayStatus.queued,
            )
            for student, text in zip(students, essays, strict=True)
        ]
        session.add_all(rows)
        session.flush()
        return ClassFixture(
            school.id, teacher.id, classroom.id, assignment.id, [s.id for s in students], [e.id for e in rows]
        )


def add_grade(
    session: Session,
    essay_id: int,
    scores: Sequence[int] | Mapping[str, int],
    *,
    version: int = 1,
    source: GradeSource = GradeSource.model,
    comment: str = "",
    errors: Sequence[tuple[str, str, str]] = (),
    deductions: Sequence[tuple[str, int, str]] = (),
    created_at: datetime | None = None,
    rubric_id: str = "gaokao-national",
    rubric_version: str = "2024.1",
) -> Grade:
    """A grade written directly (no model), and the essay marked graded."""
    by_dimension = dict(scores) if isinstance(scores, Mapping) else dict(zip(DIMS, scores, strict=True))
    raw = sum(by_dimension.values())
    grade = Grade(
        essay_id=essay_id, version=version, rubric_id=rubric_id, rubric_version=rubric_version,
        dimension_scores=by_dimension, bands={}, raw_total=raw,
        total=raw + sum(points for _, points, _ in deductions), comment=comment, source=source,
    )
    if created_at is not None:
        grade.created_at = created_at
    grade.errors = [
        ErrorAnnotation(type=t, start_offset=0, end_offset=len(o), original=o, suggestion=s, origin="model")
        for t, o, s in errors
    ]
    grade.deductions = [Deduction(rule=r, points=p, detail=d) for r, p, d in deductions]
    session.add(grade)
    session.execute(update(Essay).where(Essay.id == essay_id).values(status=EssayStatus.graded,
                                                                      finished_at=datetime.now(UTC)))
    return grade


class RecordingSender:
    """Stands in for the Celery app or a retry sender: records the tasks sent by name (or fails like a broker
    that is down)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, list[Any]]] = []
        self.fail = fail

    def send_task(self, name: str, args: Sequence[Any] = (), **_: object) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((name, list(args)))
