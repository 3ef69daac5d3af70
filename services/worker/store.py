"""Database side of a grading task: claim essays, load their context, write outcomes atomically."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker.jobs import EssayJob, EssayOutcome
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


def claim(
    sessions: sessionmaker[Session], essay_ids: Sequence[int], token: str, *, max_attempts: int, is_retry: bool
) -> list[int]:
    """Move essays to `grading` under this task's token; returns the ids this task now owns.

    An essay already `grading` under the same token is a redelivery of this very task (the worker died)
    and counts as a new attempt, unless this is a Celery retry after a transient error.
    """
    ids = list(essay_ids)
    redelivered = and_(Essay.status == EssayStatus.grading, Essay.claim_token == token)
    mine = or_(Essay.status == EssayStatus.queued, redelivered)
    counts = Essay.status == EssayStatus.queued if is_retry else mine
    with transaction(sessions) as session:
        exhausted = session.execute(
            update(Essay)
            .where(Essay.id.in_(ids), mine, counts, Essay.attempts >= max_attempts)
            .values(
                status=EssayStatus.failed, claim_token=None, finished_at=utcnow(),
                failure_reason=func.coalesce(Essay.failure_reason, f"已尝试 {max_attempts} 次仍未完成（进程中断）"),
            )
            .returning(Essay.id)
        ).scalars().all()
        for essay_id in exhausted:
            audit.record(session, "essay.failed", actor="worker", object_type="essay", object_id=essay_id,
                         reason="attempts exhausted")
        claimed = session.execute(
            update(Essay)
            .where(Essay.id.in_(ids), mine, Essay.attempts < max_attempts)
            .values(
                status=EssayStatus.grading, claim_token=token, claimed_at=utcnow(),
                attempts=_attempt_increment(is_retry),
            )
            .returning(Essay.id)
        ).scalars().all()
    return sorted(claimed)


def _attempt_increment(is_retry: bool) -> ColumnElement[int]:
    if not is_retry:
        return Essay.attempts + 1
    # On a retry only essays claimed afresh count a new attempt.
    return Essay.attempts + case((Essay.status == EssayStatus.queued, 1), else_=0)


def load_jobs(sessions: sessionmaker[Session], essay_ids: Sequence[int]) -> list[EssayJob]:
    """Build pipeline inputs: the essay text plus the names to mask (whole class roster and the school)."""
    with sessions() as session:
        rows = session.execute(
            select(Essay, Assignment, Classroom, School)
            .join(Assignment, Essay.assignment_id == Assignment.id)
            .join(Classroom, Assignment.classroom_id == Classroom.id)
            .join(School, Classroom.school_id == School.id)
            .where(Essay.id.in_(list(essay_ids)))
        ).all()
        roster: dict[int, tuple[str, ...]] = {}
        for classroom_id in {classroom.id for _, _, classroom, _ in rows}:
            roster[classroom_id] = tuple(
                session.scalars(select(Student.name).where(Student.classroom_id == classroom_id)).all()
            )
        return [
            EssayJob(
                essay_id=essay.id,
                text=essay.text,
                assignment_prompt=assignment.prompt_text,
                genre=assignment.genre,
                required_length=assignment.required_length,
                rubric_id=assignment.rubric_id,
                rubric_version=assignment.rubric_version,
                person_names=roster[classroom.id],
                school_names=(school.name,),
            )
            for essay, assignment, classroom, school in rows
        ]


def save_outcomes(sessions: sessionmaker[Session], outcomes: Sequence[EssayOutcome], token: str) -> list[int]:
    """Write graded essays (grade, errors, deductions, status, audit row) in one transaction.

    Only essays this task still owns are written (checked under row locks); returns their ids. The writes
    are batched statements, a handful of round trips per batch rather than per essay.
    """
    if not outcomes:
        return []
    with transaction(sessions) as session:
        owned = set(
            session.scalars(
                select(Essay.id)
                .where(
                    Essay.id.in_([o.essay_id for o in outcomes]),
                    Essay.status == EssayStatus.grading,
                    Essay.claim_token == token,
                )
                .with_for_update()
            )
        )
        mine = [outcome for outcome in outcomes if outcome.essay_id in owned]
        skipped = [outcome.essay_id for outcome in outcomes if outcome.essay_id not in owned]
        if skipped:
            logger.info("essays %s no longer claimed by %s; not writing them", skipped, token)
        if not mine:
            return []
        latest = dict(
            session.execute(
                select(Grade.essay_id, func.max(Grade.version))
                .where(Grade.essay_id.in_(owned))
                .group_by(Grade.essay_id)
            ).all()
        )
        now = utcnow()
        session.execute(
            update(Essay),
            [
                {
                    "id": o.essay_id, "status": EssayStatus.graded, "finished_at": now, "failure_reason": None,
                    "flags": o.flags, "char_count": o.char_count, "title": o.title, "text": o.text,
                    "claim_token": None,
                }
                for o in mine
            ],
        )
        for outcome in mine:
            version = latest.get(outcome.essay_id, 0) + 1
            session.add(_grade_row(outcome, version))
            audit.record(
                session, "model.grade", actor="worker", object_type="essay", object_id=outcome.essay_id,
                grade_version=version, model=outcome.model_name, prompt_tokens=outcome.prompt_tokens,
                generated_tokens=outcome.generated_tokens, latency_ms=outcome.latency_ms, total=outcome.total,
            )
    return [outcome.essay_id for outcome in mine]


def save_outcome(sessions: sessionmaker[Session], outcome: EssayOutcome, token: str) -> bool:
    return save_outcomes(sessions, [outcome], token) == [outcome.essay_id]


def _grade_row(outcome: EssayOutcome, version: int) -> Grade:
    grade = Grade(
        essay_id=outcome.essay_id, version=version, rubric_id=outcome.rubric_id,
        rubric_version=outcome.rubric_version, prompt_version=outcome.prompt_version,
        dimension_scores=outcome.dimension_scores, bands=outcome.bands, evidence=outcome.evidence,
        raw_total=outcome.raw_total, total=outcome.total, caps=outcome.caps, comment=outcome.comment,
        source=GradeSource.model, model_name=outcome.model_name, engine=outcome.engine_name,
        prompt_tokens=outcome.prompt_tokens, generated_tokens=outcome.generated_tokens,
        latency_ms=outcome.latency_ms, dropped_quotes=outcome.dropped_quotes,
    )
    grade.errors = [
        ErrorAnnotation(
            type=e.type, start_offset=e.start, end_offset=e.end, original=e.original[:200],
            suggestion=e.suggestion[:200], explanation=e.explanation, origin=e.origin,
        )
        for e in outcome.errors
    ]
    grade.deductions = [Deduction(rule=d.rule, points=d.points, detail=d.detail) for d in outcome.deductions]
    return grade


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
