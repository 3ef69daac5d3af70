"""Everything held about one student, as one JSON document (a subject access request under PIPL).

Roster data, every essay with every grade version, its located errors and deductions, training plans,
and the audit entries about the student or their essays (staff IP addresses are left out).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from shared import audit
from shared.models import Assignment, AuditLog, ChatTurn, Essay, Grade, Student, TrainingPlan, User
from shared.models.base import utcnow

EXPORT_FORMAT = "yuejuan-student-export"
EXPORT_VERSION = 1
EXPORT_ACTION = "privacy.export"


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _row(obj: object, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _value(getattr(obj, name)) for name in fields}


GRADE_FIELDS = (
    "version", "source", "rubric_id", "rubric_version", "prompt_version", "dimension_scores", "bands", "evidence",
    "raw_total", "total", "caps", "comment", "reason", "model_name", "engine", "prompt_tokens",
    "generated_tokens", "latency_ms", "created_by", "created_at",
)
ESSAY_FIELDS = (
    "id", "source_filename", "title", "text", "char_count", "status", "attempts", "failure_reason", "flags",
    "created_at", "finished_at",
)


def _grade(grade: Grade) -> dict[str, Any]:
    return {
        **_row(grade, GRADE_FIELDS),
        "errors": [
            _row(e, ("type", "start_offset", "end_offset", "original", "suggestion", "explanation", "origin"))
            for e in grade.errors
        ],
        "deductions": [_row(d, ("rule", "points", "detail")) for d in grade.deductions],
    }


def _essay(essay: Essay, assignment: Assignment) -> dict[str, Any]:
    return {
        **_row(essay, ESSAY_FIELDS),
        "assignment": _row(assignment, ("id", "title", "prompt_text", "genre", "required_length", "created_at")),
        "grades": [_grade(grade) for grade in essay.grades],
    }


def audit_rows_about(session: Session, student_id: int, essay_ids: list[int]) -> list[AuditLog]:
    """Audit rows whose object is the student or one of their essays, or whose details name the student's id."""
    return list(session.scalars(
        select(AuditLog).where(or_(
            and_(AuditLog.object_type == "student", AuditLog.object_id == student_id),
            and_(AuditLog.object_type == "essay", AuditLog.object_id.in_(essay_ids)),
            AuditLog.details["student_id"].as_integer() == student_id,
        )).order_by(AuditLog.id)
    ))


def export_student(session: Session, student_id: int) -> dict[str, Any] | None:
    """The student's data as plain JSON-ready values; None if there is no such student."""
    student = session.get(Student, student_id)
    if student is None:
        return None
    classroom = student.classroom
    essays = session.execute(
        select(Essay, Assignment).join(Assignment, Essay.assignment_id == Assignment.id)
        .where(Essay.student_id == student_id).order_by(Essay.created_at, Essay.id)
    ).all()
    plans = session.scalars(
        select(TrainingPlan).where(TrainingPlan.student_id == student_id).order_by(TrainingPlan.created_at)
    ).all()
    essay_ids = [essay.id for essay, _ in essays]
    account = session.scalar(select(User).where(User.student_id == student_id))
    turns = session.scalars(select(ChatTurn).where(ChatTurn.student_id == student_id).order_by(ChatTurn.id)).all()
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utcnow().isoformat(),
        "student": {
            **_row(student, ("id", "name", "student_number", "created_at")),
            "classroom": {"id": classroom.id, "name": classroom.name},
            "school": {"id": classroom.school.id, "name": classroom.school.name},
        },
        "essays": [_essay(essay, assignment) for essay, assignment in essays],
        "training_plans": [
            _row(plan, ("id", "essay_ids", "focus_areas", "narrative", "model_name", "created_at")) for plan in plans
        ],
        # The student's own account and what they asked the writing assistant (README "Student Q&A").
        "account": _row(account, ("username", "is_active", "created_at")) if account else None,
        "chat_turns": [
            _row(turn, ("id", "session_id", "question", "answer", "status", "notice", "topic", "sources",
                        "created_at", "finished_at")) for turn in turns
        ],
        "audit": [
            _row(row, ("id", "at", "actor", "action", "object_type", "object_id", "details"))
            for row in audit_rows_about(session, student_id, essay_ids)
        ],
    }


def export_student_audited(
    session: Session, student_id: int, *, actor: str, actor_id: int | None = None, ip: str | None = None
) -> dict[str, Any] | None:
    """``export_student`` plus its audit row (counts only) in the caller's transaction; the caller commits."""
    data = export_student(session, student_id)
    if data is not None:
        audit.record(session, EXPORT_ACTION, actor=actor, actor_id=actor_id, object_type="student",
                     object_id=student_id, ip=ip, essays=len(data["essays"]), audit_rows=len(data["audit"]))
    return data


def export_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
