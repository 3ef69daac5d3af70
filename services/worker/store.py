"""Database side of a grading task: claim essays, load their context, write outcomes atomically."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Row, Update, and_, bindparam, func, insert, literal_column, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker.jobs import EssayJob, EssayOutcome, LocatedError
from shared import audit
from shared.adapters import active_adapter_names
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
    abandoned_claim,
    transaction,
)
from shared.models.base import utcnow

logger = logging.getLogger(__name__)

# The statements a grading task runs, built once: constructing them costs more than running them at this size.
# Core statements on the tables, because the ORM's per-row bookkeeping costs more than the database does here.
_ESSAYS, _GRADES = Essay.__table__, Grade.__table__
_PRIOR = _GRADES.alias("prior")
_JOB_ROWS = (
    select(
        _ESSAYS.c.id, _ESSAYS.c.text, Assignment.prompt_text, Assignment.genre, Assignment.required_length,
        Assignment.rubric_id, Assignment.rubric_version, Assignment.classroom_id, School.name.label("school"),
        School.id.label("school_id"),
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
    .values(status=EssayStatus.graded, finished_at=bindparam("now"), failure_reason=None, claim_token=None,
            lease_until=None)
    .returning(
        _ESSAYS.c.id,
        # Aliased and spelled out: SQLite renders the updated table's columns unqualified in RETURNING, and a bare
        # `id` inside the subquery would be the grades row's id (a second regrade then reused a version number).
        select(func.coalesce(func.max(_PRIOR.c.version), 0))
        .where(_PRIOR.c.essay_id == literal_column("essays.id"))
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
    sessions: sessionmaker[Session], essay_ids: Sequence[int], token: str, *, lease_s: int, is_retry: bool
) -> list[int]:
    """Move queued essays to `grading` under this task's token with a lease; returns the ids this task now owns.

    A claim charges no attempt: only a failure the essay is the likely cause of does (`release_failure`,
    `recover_claim`). On a Celery retry after a transient error the task takes back what it already held.
    """
    with transaction(sessions) as session:
        return _claim(session, essay_ids, token, lease_s=lease_s, is_retry=is_retry)


def claim_and_load(
    sessions: sessionmaker[Session], essay_ids: Sequence[int], token: str, *, lease_s: int, is_retry: bool
) -> list[EssayJob]:
    """`claim`, then load the claimed essays as pipeline inputs, in one transaction: what a grading task does
    before the model runs."""
    with transaction(sessions) as session:
        claimed = _claim(session, essay_ids, token, lease_s=lease_s, is_retry=is_retry)
        return _load_jobs(session, claimed) if claimed else []


def _claim(session: Session, essay_ids: Sequence[int], token: str, *, lease_s: int, is_retry: bool) -> list[int]:
    now = utcnow()
    rows = session.execute(
        _claim_statement(is_retry),
        {"ids": list(essay_ids), "token": token, "now": now, "lease_until": now + timedelta(seconds=lease_s)},
    ).all()
    return sorted(row.id for row in rows)


@cache
def _claim_statement(is_retry: bool) -> Update:
    """One UPDATE: queued essays (and, on a retry, the task's own) become this task's. Parameters: ids, token,
    now, lease_until."""
    mine: Any = _ESSAYS.c.status == EssayStatus.queued
    if is_retry:
        mine = or_(mine, and_(_ESSAYS.c.status == EssayStatus.grading, _ESSAYS.c.claim_token == bindparam("token")))
    return (
        update(_ESSAYS)
        .where(_ESSAYS.c.id.in_(bindparam("ids", expanding=True)), mine)
        .values(status=EssayStatus.grading.value, claim_token=bindparam("token"),
                claimed_at=bindparam("now", type_=_ESSAYS.c.claimed_at.type),
                lease_until=bindparam("lease_until", type_=_ESSAYS.c.lease_until.type))
        .returning(_ESSAYS.c.id)
    )


def renew_lease(sessions: sessionmaker[Session], token: str, lease_s: int) -> int:
    """Extend the lease on the essays this task holds; returns how many it still holds."""
    with transaction(sessions) as session:
        result = session.execute(
            update(Essay)
            .where(Essay.claim_token == token, Essay.status == EssayStatus.grading)
            .values(lease_until=utcnow() + timedelta(seconds=lease_s))
        )
        return result.rowcount or 0


def expired_claims(sessions: sessionmaker[Session], now: datetime | None = None) -> list[str]:
    """Tokens of claims whose lease has run out: their task is gone (killed, past its time limit, lost)."""
    with sessions() as session:
        return list(session.scalars(
            select(Essay.claim_token).where(abandoned_claim(now or utcnow()), Essay.claim_token.is_not(None)).distinct()
        ))


@dataclass
class Recovery:
    """What became of a claim whose task died: batches to send again (id, chars), and essays failed for good."""

    resend: list[list[tuple[int, int]]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def essay_ids(self) -> list[int]:
        return [essay_id for batch in self.resend for essay_id, _ in batch] + self.failed


def recover_claim(
    sessions: sessionmaker[Session], token: str, *, max_attempts: int, cause: str, failure_reason: str
) -> Recovery:
    """Release the essays a dead task held: a batch goes back in halves with no attempt charged (the fault may be
    the worker's, or one essay's); an essay that was alone is the likely cause and is charged one attempt, then
    failed with ``failure_reason`` at the limit. ``cause`` is recorded in the audit log."""
    recovery = Recovery()
    with transaction(sessions) as session:
        held = session.execute(
            select(Essay.id, Essay.char_count, Essay.attempts)
            .where(Essay.claim_token == token, Essay.status == EssayStatus.grading)
            .order_by(Essay.char_count, Essay.id)
            .with_for_update()
        ).all()
        if not held:
            return recovery
        released = {"status": EssayStatus.queued, "claim_token": None, "lease_until": None}
        if len(held) > 1:
            session.execute(update(Essay).where(Essay.id.in_([row.id for row in held]),
                                                Essay.claim_token == token).values(**released))
            middle = len(held) // 2
            recovery.resend = [[(row.id, row.char_count) for row in part] for part in (held[:middle], held[middle:])]
            for row in held:
                audit.record(session, "essay.requeue", actor="worker", object_type="essay", object_id=row.id,
                             reason=cause, batch=len(held), charged=False)
            return recovery
        (alone,) = held
        attempts = alone.attempts + 1
        final = attempts >= max_attempts
        values: dict[str, Any] = {**released, "attempts": attempts}
        if final:
            values.update(status=EssayStatus.failed, failure_reason=failure_reason[:2000], finished_at=utcnow())
            recovery.failed = [alone.id]
        else:
            recovery.resend = [[(alone.id, alone.char_count)]]
        session.execute(update(Essay).where(Essay.id == alone.id, Essay.claim_token == token).values(**values))
        audit.record(session, "essay.failed" if final else "essay.retry", actor="worker", object_type="essay",
                     object_id=alone.id, attempt=attempts, reason=cause)
    return recovery


def load_jobs(session: Session, essay_ids: Sequence[int]) -> list[EssayJob]:
    """The pipeline inputs of these essays as a grading task loads them, without claiming (training data)."""
    return _load_jobs(session, essay_ids)


def _load_jobs(session: Session, essay_ids: Sequence[int]) -> list[EssayJob]:
    """Pipeline inputs: the essay text plus the names to mask (the whole class roster and the school)."""
    rows = session.execute(_JOB_ROWS, {"ids": list(essay_ids)}).all()
    rosters: dict[int, list[str]] = {row.classroom_id: [] for row in rows}
    for classroom_id, name in session.execute(_ROSTERS, {"classroom_ids": list(rosters)}):
        rosters[classroom_id].append(name)
    adapters = active_adapter_names(session, {row.school_id for row in rows})
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
            adapter=adapters.get((row.school_id, row.rubric_id)),
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
                latency_ms=o.latency_ms, total=o.total, **({"adapter": o.adapter} if o.adapter else {}),
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
        "adapter": outcome.adapter,
        "prompt_tokens": outcome.prompt_tokens, "generated_tokens": outcome.generated_tokens,
        "latency_ms": outcome.latency_ms, "dropped_quotes": outcome.dropped_quotes, "created_at": now,
        "needs_review": outcome.needs_review, "confidence": outcome.confidence,
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
    """After a failed attempt (charged): back to `queued` for another try, or `failed` with the reason at the
    limit."""
    with transaction(sessions) as session:
        essay = session.scalar(
            select(Essay).where(Essay.id == essay_id, Essay.status == EssayStatus.grading, Essay.claim_token == token)
        )
        if essay is None:
            return None
        attempts = essay.attempts + 1
        final = attempts >= max_attempts
        new_status = EssayStatus.failed if final else EssayStatus.queued
        session.execute(
            update(Essay)
            .where(Essay.id == essay_id, Essay.claim_token == token)
            .values(status=new_status, claim_token=None, lease_until=None, attempts=attempts,
                    failure_reason=reason[:2000], finished_at=utcnow() if final else None)
        )
        audit.record(session, "essay.failed" if final else "essay.retry", actor="worker", object_type="essay",
                     object_id=essay_id, attempt=attempts, reason=audit.reason_category(reason))
    return new_status
