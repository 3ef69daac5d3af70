"""One class with an assignment of queued essays, the fixture most grading and report tests start from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from shared.models import transaction
from tests.factories.builders import (
    add_assignment,
    add_classroom,
    add_essays,
    add_school,
    add_students,
    add_user,
)


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
        school = add_school(session, f"测试中学{tag}")
        teacher = add_user(session, f"teacher-{tag}", "王老师", school_id=school.id)
        classroom = add_classroom(session, school.id, teacher.id, f"高三{tag}班")
        students = add_students(session, classroom.id, [(name, f"{tag}-{i:03d}") for i, name in enumerate(names)])
        assignment = add_assignment(session, classroom.id, rubric_id=rubric_id, rubric_version=rubric_version,
                                    required_length=required_length, created_by=teacher.id)
        rows = add_essays(session, assignment.id,
                          [(student.id, text) for student, text in zip(students, essays, strict=True)])
        return ClassFixture(
            school.id, teacher.id, classroom.id, assignment.id, [s.id for s in students], [e.id for e in rows]
        )
