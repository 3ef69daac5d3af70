"""Database side of a grading task: claim essays, load their context, write outcomes atomically."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, Update, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker.jobs import EssayJob, EssayOutcome, LocatedError
from shared import audit
from shared.models import (
    Assignment,
    Classroom,
    Deduction,
    ErrorAnnotation,
    Essay,
    EssayStatus,
    Grade,
    GradeSource,
    School,
    Student,
    transaction,
)
from shared.models.base import utcnow

logger = logging.getLogger(__name__)

# The statements a grading task runs, built once: constructing them costs more than running them at this size.
# Core statements on the tables, because the ORM's per-row bookkeeping costs more than the database does here.
_ESSAYS, _GRADES = Essay.__table__, Grade.__table__
_JOB_ROWS = (
    select(
        _ESSAYS.c.id, _ESSAYS.c.text, Assignment.prompt_text, Assignment.genre, Assignment.required_length,
        Assignment.rubric_id, Assignment.rubric_version, Assignment.classroom_id, School.name.label("school"),
    )
    .join(Assignment, _ESSAYS.c.assignment_id == Assignment.id)
    .join(Classroom, Assignment.classroom_id == Classroom.id)
    .join(School, Classroom.school_id == School.id)
    .where(_ESSAYS.c.id.in_(bindparam("ids", expanding=True)))
)
_ROSTERS = select(Student.classroom_id, Student.name).where(
    Student.classroom_id.in_(bindparam("classroom_ids", expanding=True))
)
_MARK_GRADED = (
    update(_ESSAYS)
    .where(
        _ESSAYS.c.id.in_(bindparam("ids", expanding=True)),
        _ESSAYS.c.status == EssayStatus.grading,
        _ESSAYS.c.claim_token == bindparam("token"),
    )
    .values(status=EssayStatus.graded, finished_at=bindparam("now"), failure_reason=None, claim_token=None)
    .returning(
        _ESSAYS.c.id,
        select(func.coalesce(func.max(_GRADES.c.version), 0))
        .where(_GRADES.c.essay_id == _ESSAYS.c.id)
        .scalar_subquery()
        .label("version"),
        _ESSAYS.c.title, _ESSAYS.c.text, _ESSAYS.c.char_count, _ESSAYS.c.flags,
    )
)
_REWRITE_TEXT = (
    update(_ESSAYS)
    .where(_ESSAYS.c.id == bindparam("essay_id"))
    .values(title=bindparam("new_title"), text=bindparam("new_text"), char_count=bindparam("new_char_count"),
            flags=bindparam("new_flags"))
)
_INSERT_GRADE = insert(_GRADES)
# Errors and deductions find their grade by (essay, version), which is unique: no round trip to learn the
# new grade ids. (A multi-row INSERT ... RETURNING changes its SQL text with the batch size, so the server
# parses and plans it afresh every time.)
_NEW_GRADE_ID = (
    select(_GRADES.c.id)
    .where(_GRADES.c.essay_id == bindparam("essay_id"), _GRADES.c.version == bindparam("version"))
    .scalar_subquery()
)
_INSERT_ERROR = insert(ErrorAnnotation.__table__).values(grade_id=_NEW_GRADE_ID)
_INSERT_DEDUCTION = insert(Deduction.__table__).values(grade_id=_NEW_GRADE_ID)


def claim(
    sessions: sessionmaker[Session], essay_ids: Sequence[int], token: str, *, max_attempts: int, is_retry: bool
) -> list[int]:
    """Move essays to `grading` under this task's token; returns the ids this task now owns.

    An essay already `grading` under the same token is a redelivery of this very task (the worker died)
    and counts as a new attempt, unless this is a Celery retry after a transient error.
    """
    with transaction(sessions) as session:
        return _claim(session, essay_ids, token, max_attempts=max_attempts, is_retry=is_retry)


def claim_and_load(
    sessions: sessionmaker[Session], essay_ids: Sequence[int], token: str, *, max_attempts: int, is_retry: bool
) -> list[EssayJob]:
    """`claim`, then load the claimed essays as pipeline inputs, in one transaction: what a grading task does
    before the model runs."""
    with transaction(sessions) as session:
        claimed = _claim(session, essay_ids, token, max_attempts=max_attempts, is_retry=is_retry)
        return _load_jobs(session, claimed) if claimed else []


def _claim(session: Session, essay_ids: Sequence[int], token: str, *, max_attempts: int, is_retry: bool) -> list[int]:
    rows = session.execute(
        _claim_statement(is_retry),
        {"ids": list(essay_ids), "token": token, "max_attempts": max_attempts, "now": utcnow(),
         "exhausted_reason": f"已尝试 {max_attempts} 次仍未完成（进程中断）"},
    ).all()
    for essay_id, status in rows:
        if status == EssayStatus.failed:
            audit.record(session, "essay.failed", actor="worker", object_type="essay", object_id=essay_id,
                         reason="attempts exhausted")
    return sorted(essay_id for essay_id, status in rows if status == EssayStatus.grading)


@cache
def _claim_statement(is_retry: bool) -> Update:
    """One UPDATE: essays whose attempts are used up fail, the others become this task's.

    Parameters: ids, token, max_attempts, now, exhausted_reason.
    """
    token, max_attempts = bindparam("token"), bindparam("max_attempts")
    now = bindparam("now", type_=_ESSAYS.c.claimed_at.type)
    redelivered = and_(_ESSAYS.c.status == EssayStatus.grading, _ESSAYS.c.claim_token == token)
    mine = or_(_ESSAYS.c.status == EssayStatus.queued, redelivered)
    counts = _ESSAYS.c.status == EssayStatus.queued if is_retry else mine
    exhausted = and_(counts, _ESSAYS.c.attempts >= max_attempts)
    # On a retry after a transient error only essays claimed afresh count a new attempt.
    attempt = _ESSAYS.c.attempts + (case((_ESSAYS.c.status == EssayStatus.queued, 1), else_=0) if is_retry else 1)

    def unless_exhausted(claimed: Any, failed: Any) -> ColumnElement[Any]:
        return case((exhausted, failed), else_=claimed)

    return (
        update(_ESSAYS)
        .where(_ESSAYS.c.id.in_(bindparam("ids", expanding=True)), mine, or_(_ESSAYS.c.attempts < max_attempts, counts))
        .values(
            status=unless_exhausted(EssayStatus.grading.value, EssayStatus.failed.value),
            claim_token=unless_exhausted(token, None),
            claimed_at=unless_exhausted(now, _ESSAYS.c.claimed_at),
            attempts=unless_exhausted(attempt, _ESSAYS.c.attempts),
            finished_at=unless_exhausted(_ESSAYS.c.finished_at, now),
            failure_reason=unless_exhausted(
                _ESSAYS.c.failure_reason, func.coalesce(_ESSAYS.c.failure_reason, bindparam("exhausted_reason"))
            ),
        )
        .returning(_ESSAYS.c.id, _ESSAYS.c.status)
    )


def _load_jobs(session: Session, essay_ids: Sequence[int]) -> list[EssayJob]:
    """Pipeline inputs: the essay text plus the names to mask (the whole class roster and the school)."""
    rows = session.execute(_JOB_ROWS, {"ids": list(essay_ids)}).all()
    rosters: dict[int, list[str]] = {row.classroom_id: [] for row in rows}
    for classroom_id, name in session.execute(_ROSTERS, {"classroom_ids": list(rosters)}):
        rosters[classroom_id].append(name)
    return [
        EssayJob(
            essay_id=row.id,
            text=row.text,
            assignment_prompt=row.prompt_text,
            genre=row.genre,
            required_length=row.required_length,
            rubric_id=row.rubric_id,
            rubric_version=row.rubric_version,
            person_names=tuple(rosters[row.classroom_id]),
            school_names=(row.school,),
        )
        for row in rows
    ]


def save_outcomes(sessions: sessionmaker[Session], outcomes: Sequence[EssayOutcome], token: str) -> list[int]:
    """Write graded essays (grade, errors, deductions, status, audit row) in one transaction.

    Only essays this task still owns are written (checked under row locks); returns their ids. Each table
    gets one statement for the whole batch: a grading task's writes are a handful of round trips.
    """
    if not outcomes:
        return []
    now = utcnow()
    with transaction(sessions) as session:
        # One statement marks the essays graded, locks them, and tells which ones this task still owns.
        owned = {
            row.id: row
            for row in session.execute(
                _MARK_GRADED, {"ids": [o.essay_id for o in outcomes], "token": token, "now": now}
            )
        }
        mine = [outcome for outcome in outcomes if outcome.essay_id in owned]
        skipped = [outcome.essay_id for outcome in outcomes if outcome.essay_id not in owned]
        if skipped:
            logger.info("essays %s no longer claimed by %s; not writing them", skipped, token)
        if not mine:
            return []
        # The pipeline's normalised text and counts usually match what the upload stored: rewrite only changes.
        changed = [
            {"essay_id": o.essay_id, "new_title": o.title, "new_text": o.text, "new_char_count": o.char_count,
             "new_flags": o.flags}
            for o in mine
            if _stored_differs(owned[o.essay_id], o)
        ]
        if changed:
            session.execute(_REWRITE_TEXT, changed)
        written = [(o, owned[o.essay_id].version + 1) for o in mine]
        session.execute(_INSERT_GRADE, [_grade_values(o, version, now) for o, version in written])
        errors = [_error_values(o.essay_id, version, e) for o, version in written for e in o.errors]
        if errors:
            session.execute(_INSERT_ERROR, errors)
        deductions = [
            {"essay_id": o.essay_id, "version": version, "rule": d.rule, "points": d.points, "detail": d.detail}
            for o, version in written for d in o.deductions
        ]
        if deductions:
            session.execute(_INSERT_DEDUCTION, deductions)
        audit.record_many(session, [
            audit.entry(
                "model.grade", actor="worker", object_type="essay", object_id=o.essay_id, grade_version=version,
                model=o.model_name, prompt_tokens=o.prompt_tokens, generated_tokens=o.generated_tokens,
                latency_ms=o.latency_ms, total=o.total,
            )
            for o, version in written
        ])
    return [outcome.essay_id for outcome in mine]


def save_outcome(sessions: sessionmaker[Session], outcome: EssayOutcome, token: str) -> bool:
    return save_outcomes(sessions, [outcome], token) == [outcome.essay_id]


def _stored_differs(stored: Row[Any], outcome: EssayOutcome) -> bool:
    return (stored.title, stored.text, stored.char_count, stored.flags) != (
        outcome.title, outcome.text, outcome.char_count, outcome.flags
    )


def _grade_values(outcome: EssayOutcome, version: int, now: datetime) -> dict[str, Any]:
    return {
        "essay_id": outcome.essay_id, "version": version, "rubric_id": outcome.rubric_id,
        "rubric_version": outcome.rubric_version, "prompt_version": outcome.prompt_version,
        "dimension_scores": outcome.dimension_scores, "bands": outcome.bands, "evidence": outcome.evidence,
        "raw_total": outcome.raw_total, "total": outcome.total, "caps": outcome.caps, "comment": outcome.comment,
        "source": GradeSource.model, "model_name": outcome.model_name, "engine": outcome.engine_name,
        "prompt_tokens": outcome.prompt_tokens, "generated_tokens": outcome.generated_tokens,
        "latency_ms": outcome.latency_ms, "dropped_quotes": outcome.dropped_quotes, "created_at": now,
    }


def _error_values(essay_id: int, version: int, error: LocatedError) -> dict[str, Any]:
    return {
        "essay_id": essay_id, "version": version, "type": error.type, "start_offset": error.start,
        "end_offset": error.end,
        "original": error.original[:200], "suggestion": error.suggestion[:200], "explanation": error.explanation,
        "origin": error.origin,
    }


def release_failure(
    sessions: sessionmaker[Session], essay_id: int, token: str, reason: str, *, max_attempts: int
) -> EssayStatus | None:
    """After a failed attempt: back to `queued` for another try, or `failed` with the reason at the limit."""
    with transaction(sessions) as session:
        essay = session.scalar(
            select(Essay).where(Essay.id == essay_id, Essay.status == EssayStatus.grading, Essay.claim_token == token)
        )
        if essay is None:
            return None
        final = essay.attempts >= max_attempts
        new_status = EssayStatus.failed if final else EssayStatus.queued
        session.execute(
            update(Essay)
            .where(Essay.id == essay_id, Essay.claim_token == token)
            .values(status=new_status, claim_token=None, failure_reason=reason[:2000],
                    finished_at=utcnow() if final else None)
        )
        audit.record(session, "essay.failed" if final else "essay.retry", actor="worker", object_type="essay",
                     object_id=essay_id, attempt=essay.attempts, reason=audit.reason_category(reason))
    return new_status


def unfinished_count(sessions: sessionmaker[Session], assignment_id: int) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).select_from(Essay).where(
                Essay.assignment_id == assignment_id, Essay.status.in_([EssayStatus.queued, EssayStatus.grading])
            )
        ) or 0
