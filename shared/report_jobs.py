"""Report jobs: creating a class workbook's job (one function for the web and the workers); failures as a
category a teacher understands, kept apart from the technical detail; re-queueing.

The category travels in the job's ``error`` text as its first line, ``[code] 标签``, or ``[code retry=n/m] 标签``
while the task will try again by itself; the technical detail (exception, server path) follows on the next
lines and is shown to administrators only. Error text without that first line (written before categories
existed) reads as an internal error whose detail is the whole text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.failures import BROKER_UNAVAILABLE, CATEGORIES, INTERNAL, ErrorCategory
from shared.models import Assignment, Classroom, JobStatus, ReportJob
from shared.models.base import utcnow
from shared.tasks import ReportKind

MAX_ERROR_CHARS = 2000
_HEADER = re.compile(r"\[(?P<code>[a-z_]+)(?: retry=(?P<retry>\d+)/(?P<of>\d+))?\] (?P<label>[^\n]*)")


@dataclass(frozen=True)
class ReportError:
    """A parsed job error: the category, the detail for administrators, and the retry under way (if any)."""

    category: ErrorCategory
    detail: str
    retry: int | None = None
    max_retries: int | None = None

    @property
    def label(self) -> str:
        return self.category.label

    @property
    def retrying(self) -> bool:
        return self.retry is not None

    def to_text(self) -> str:
        retry = f" retry={self.retry}/{self.max_retries}" if self.retry is not None else ""
        return f"[{self.category.code}{retry}] {self.category.label}\n{self.detail}"[:MAX_ERROR_CHARS]


def parse_error(text: str | None) -> ReportError | None:
    """The category and detail stored in a job's ``error`` column (None when there is no error)."""
    if not text:
        return None
    header, _, detail = text.partition("\n")
    match = _HEADER.fullmatch(header)
    if match is None:
        return ReportError(INTERNAL, text)
    category = CATEGORIES.get(match["code"]) or ErrorCategory(match["code"], match["label"], False)
    retry = int(match["retry"]) if match["retry"] else None
    return ReportError(category, detail, retry, int(match["of"]) if match["of"] else None)


def requeue_failed(session: Session, job_id: int) -> bool:
    """failed → queued in the caller's transaction (a conditional UPDATE); False when the job is not failed."""
    result = session.execute(
        update(ReportJob).where(ReportJob.id == job_id, ReportJob.status == JobStatus.failed)
        .values(status=JobStatus.queued, error=None, finished_at=None)
    )
    return bool(result.rowcount)


def create_class_job(session: Session, assignment_id: int, *, requested_by: int | None = None) -> ReportJob | None:
    """A queued class-workbook job for the assignment (its class and school set), flushed in the caller's
    transaction; None when the assignment does not exist.

    Every class job is made here: a teacher's request on the web, the worker when an assignment is complete and
    again when its training plans are written. Each job builds its own file, so two jobs never write one file.
    """
    target = session.execute(
        select(Assignment.classroom_id, Classroom.school_id)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Assignment.id == assignment_id)
    ).one_or_none()
    if target is None:
        return None
    job = ReportJob(kind=ReportKind.class_workbook, school_id=target.school_id, classroom_id=target.classroom_id,
                    assignment_id=assignment_id, requested_by=requested_by, status=JobStatus.queued)
    session.add(job)
    session.flush()
    return job


def fail_unsent(session: Session, job_id: int, detail: str) -> None:
    """queued → failed (broker unavailable) in the caller's transaction, for a job whose task could not be sent:
    a job nobody will build must not look live, and a failed one gets 重新生成."""
    session.execute(
        update(ReportJob).where(ReportJob.id == job_id, ReportJob.status == JobStatus.queued)
        .values(status=JobStatus.failed, finished_at=utcnow(), error=ReportError(BROKER_UNAVAILABLE, detail).to_text())
    )


def recent_class_jobs(session: Session, assignment_id: int, limit: int = 10) -> list[ReportJob]:
    """An assignment's class workbook jobs, newest first."""
    return list(session.scalars(
        select(ReportJob).where(ReportJob.assignment_id == assignment_id, ReportJob.kind == ReportKind.class_workbook)
        .order_by(ReportJob.created_at.desc(), ReportJob.id.desc()).limit(limit)
    ))


def recent_school_jobs(session: Session, school_id: int | None, limit: int = 50) -> list[ReportJob]:
    """School workbook jobs, newest first: of one school, or of every school (``None``, for a sysadmin)."""
    query = select(ReportJob).where(ReportJob.kind == ReportKind.school_workbook)
    if school_id is not None:
        query = query.where(ReportJob.school_id == school_id)
    return list(session.scalars(query.order_by(ReportJob.created_at.desc(), ReportJob.id.desc()).limit(limit)))
