"""A student's own essays, grades (only where the class has released them), errors and training plan: what the
student's pages show and what the chat may ground an answer in. Nothing here reads another student's rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.grades import final_grades
from shared.models import Assignment, Essay, EssayStatus, Student, StudentAccess, TrainingPlan


@dataclass(frozen=True)
class EssayError:
    type: str
    original: str
    suggestion: str
    explanation: str


@dataclass
class OwnEssay:
    id: int
    title: str
    assignment: str
    text: str
    status: EssayStatus
    total: int | None = None  # only when grades are released and the grade is final
    comment: str = ""
    errors: list[EssayError] = field(default_factory=list)


def grades_released(session: Session, classroom_id: int) -> bool:
    access = session.get(StudentAccess, classroom_id)
    return bool(access and access.grades_open)


def chat_open(session: Session, classroom_id: int) -> bool:
    access = session.get(StudentAccess, classroom_id)
    return bool(access and access.chat_open)


def own_essays(session: Session, student: Student) -> list[OwnEssay]:
    """The student's essays, newest first; scores, comments and errors only when the class's grades are open."""
    rows = session.execute(
        select(Essay, Assignment.title).join(Assignment, Essay.assignment_id == Assignment.id)
        .where(Essay.student_id == student.id).order_by(Essay.created_at.desc(), Essay.id.desc())
    ).all()
    released = grades_released(session, student.classroom_id)
    grades = final_grades(session, [essay.id for essay, _ in rows]) if released else {}
    essays = []
    for essay, assignment_title in rows:
        own = OwnEssay(essay.id, essay.title or assignment_title, assignment_title, essay.text, essay.status)
        grade = grades.get(essay.id)
        if grade is not None:
            own.total, own.comment = grade.total, grade.comment
            own.errors = [EssayError(e.type, e.original, e.suggestion, e.explanation) for e in grade.errors]
        essays.append(own)
    return essays


def latest_plan(session: Session, student: Student) -> TrainingPlan | None:
    """The newest training plan (plans are written from released grades' errors; shown with the grades)."""
    if not grades_released(session, student.classroom_id):
        return None
    return session.scalar(select(TrainingPlan).where(TrainingPlan.student_id == student.id)
                          .order_by(TrainingPlan.created_at.desc(), TrainingPlan.id.desc()).limit(1))
