"""Classes, students and assignments: creating them with their audit rows, and what the class pages list
(shared by the pages and the API)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.web.actor import Actor
from services.web.forms import AssignmentInput, ClassInput
from shared.models import Assignment, Classroom, Essay, Student


@dataclass(frozen=True)
class ClassPage:
    students: list[Student]
    with_essays: set[int]  # ids of the students who have handed in at least one essay
    assignments: list[Assignment]


def class_counts(session: Session, classroom_ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Students and assignments per class, for the class list."""
    if not classroom_ids:
        return {}, {}
    students = dict(session.execute(
        select(Student.classroom_id, func.count()).where(Student.classroom_id.in_(classroom_ids))
        .group_by(Student.classroom_id)
    ).all())
    assignments = dict(session.execute(
        select(Assignment.classroom_id, func.count()).where(Assignment.classroom_id.in_(classroom_ids))
        .group_by(Assignment.classroom_id)
    ).all())
    return students, assignments


def class_page(session: Session, classroom: Classroom) -> ClassPage:
    """A class's roster (by student number, then name), who has handed in work, and its assignments (newest first)."""
    students = session.scalars(
        select(Student).where(Student.classroom_id == classroom.id).order_by(Student.student_number, Student.name)
    ).all()
    with_essays = set(session.scalars(
        select(Essay.student_id).join(Student, Essay.student_id == Student.id)
        .where(Student.classroom_id == classroom.id)
    ))
    assignments = session.scalars(
        select(Assignment).where(Assignment.classroom_id == classroom.id).order_by(Assignment.created_at.desc())
    ).all()
    return ClassPage(list(students), with_essays, list(assignments))


class DuplicateName(ValueError):
    """A class name that the school already uses, or a student number the class already has."""


def create_classroom(session: Session, actor: Actor, data: ClassInput) -> Classroom:
    school_id = data.teacher.school_id
    assert school_id is not None  # validate_class refuses teachers without a school
    exists = session.scalar(select(Classroom.id).where(Classroom.school_id == school_id, Classroom.name == data.name))
    if exists is not None:
        raise DuplicateName(f"本校已有名为“{data.name}”的班级。")
    classroom = Classroom(school_id=school_id, teacher_id=data.teacher.id, name=data.name)
    session.add(classroom)
    session.flush()
    actor.record(session, "classroom.create", object_type="classroom", object_id=classroom.id)
    return classroom


def add_student(session: Session, actor: Actor, classroom: Classroom, name: str, number: str | None) -> Student:
    if number and session.scalar(
        select(Student.id).where(Student.classroom_id == classroom.id, Student.student_number == number)
    ):
        raise DuplicateName(f"本班已有学号为 {number} 的学生。")
    student = Student(classroom_id=classroom.id, name=name, student_number=number or None)
    session.add(student)
    session.flush()
    actor.record(session, "student.add", object_type="classroom", object_id=classroom.id, student_id=student.id)
    return student


def essay_count(session: Session, student: Student) -> int:
    return session.scalar(select(func.count()).select_from(Essay).where(Essay.student_id == student.id)) or 0


def remove_student(session: Session, actor: Actor, student: Student) -> None:
    """Remove a student who has no essays (essays and their grades are history and are not deleted here)."""
    if essay_count(session, student):
        raise ValueError(f"学生 {student.name} 已有作文记录，不能删除。")
    actor.record(session, "student.remove", object_type="classroom", object_id=student.classroom_id,
                 student_id=student.id)
    session.delete(student)
    session.flush()


def create_assignment(session: Session, actor: Actor, classroom: Classroom, data: AssignmentInput) -> Assignment:
    assignment = Assignment(
        classroom_id=classroom.id, title=data.title, prompt_text=data.prompt_text, genre=data.genre,
        rubric_id=data.rubric.rubric_id, rubric_version=data.rubric.rubric_version,
        required_length=data.required_length, created_by=actor.user_id,
    )
    session.add(assignment)
    session.flush()
    actor.record(session, "assignment.create", object_type="assignment", object_id=assignment.id,
                 classroom_id=classroom.id, rubric=data.rubric.key)
    return assignment
