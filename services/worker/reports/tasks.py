"""Report tasks, registered by name: the class and the school workbook (reports queue).

Workbook tasks never load a model; they read through ``runtime.sessions()`` only. A job moves
queued → running → done | failed; a done job is not rebuilt. A failure of the environment (full or read-only
disk, database or broker away) puts the job back to queued with its category and the task retries with
exponential back-off; anything else, or the last retry, marks the job failed and re-raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from shared import audit, storage
from shared.clock import people_zone
from shared.failures import BROKER_UNAVAILABLE, ErrorCategory, classify, error_detail
from shared.models import JobStatus, ReportJob, transaction
from shared.models.base import utcnow
from shared.report_jobs import ReportError
from shared.tasks import CLASS_WORKBOOK_TASK, REPORTS_QUEUE, SCHOOL_WORKBOOK_TASK, ReportKind

logger = logging.getLogger(__name__)

Builder = Callable[..., Path]  # (session, target id, path, *, zone) -> path
# 5 s, 10 s, 20 s … capped at 10 minutes: ten retries span about 40 minutes, long enough to free a disk.
REPORT_MAX_RETRIES = 10
RETRY_FIRST_DELAY_S = 5
RETRY_MAX_DELAY_S = 600


class RetryLater(Exception):
    """An environmental failure with retries left: the job is queued again and the task should retry."""

    def __init__(self, cause: Exception, category: ErrorCategory) -> None:
        super().__init__(f"{category.label}: {error_detail(cause)}")
        self.cause, self.category = cause, category


def retry_delay(retries_done: int) -> int:
    """Seconds before retry number ``retries_done + 1``."""
    return min(RETRY_FIRST_DELAY_S * 2 ** retries_done, RETRY_MAX_DELAY_S)


def register_report_tasks(app: Celery) -> None:
    @app.task(name=CLASS_WORKBOOK_TASK, queue=REPORTS_QUEUE, bind=True, max_retries=REPORT_MAX_RETRIES)
    def class_workbook(self: Task, report_job_id: int) -> str | None:
        """Build the class workbook of a report job (kind ``class_workbook``)."""
        return run_report_task(self, report_job_id, ReportKind.class_workbook)

    @app.task(name=SCHOOL_WORKBOOK_TASK, queue=REPORTS_QUEUE, bind=True, max_retries=REPORT_MAX_RETRIES)
    def school_workbook(self: Task, report_job_id: int) -> str | None:
        """Build the school workbook of a report job (kind ``school_workbook``)."""
        return run_report_task(self, report_job_id, ReportKind.school_workbook)


def run_report_task(task: Task, job_id: int, kind: str) -> str | None:
    """Run the job; on an environmental failure with retries left, ask Celery to run the task again later."""
    sessions, retries = runtime.sessions(), task.request.retries
    try:
        return run_report_job(sessions, reports_dir(), job_id, kind, retries_done=retries,
                              max_retries=task.max_retries or 0, zone=people_zone(runtime.settings().timezone))
    except RetryLater as later:
        delay = retry_delay(retries)
        logger.warning("report job %s: %s; retry %s of %s in %s s", job_id, later, retries + 1, task.max_retries,
                       delay)
        try:
            task.retry(exc=later.cause, countdown=delay)
        except Reject as lost:  # the retry message could not be published: nothing would run the job again
            _record_error(sessions, job_id, ReportError(BROKER_UNAVAILABLE, error_detail(lost.reason)))
            raise
        raise  # task.retry raises; this only satisfies the type checker


def reports_dir() -> Path:
    return storage.reports_dir(runtime.settings().data_dir).resolve()


def _builders() -> dict[str, tuple[Builder, str]]:
    from services.worker.reports.class_workbook import build_class_workbook
    from services.worker.reports.school_workbook import build_school_workbook

    return {ReportKind.class_workbook: (build_class_workbook, "assignment_id"),
            ReportKind.school_workbook: (build_school_workbook, "school_id")}


def run_report_job(
    sessions: sessionmaker[Session], directory: Path, job_id: int, expected_kind: str | None = None, *,
    retries_done: int = 0, max_retries: int = 0, zone: tzinfo | None = None,
) -> str | None:
    """Build a report job's workbook; returns its file path (None when the job no longer exists).

    A failure is recorded with its category; an environmental one raises ``RetryLater`` while
    ``retries_done < max_retries`` (the job reads queued, retry n of m), otherwise the job is failed and the
    exception re-raised.
    """
    try:
        return _build(sessions, directory, job_id, expected_kind, zone)
    except Exception as exc:
        category = classify(exc)
        retrying = category.environmental and retries_done < max_retries
        if retrying:
            logger.warning("report job %s failed (%s): %s", job_id, category.code, error_detail(exc))
        else:
            logger.exception("report job %s failed (%s)", job_id, category.code)
        error = ReportError(category, error_detail(exc), retries_done + 1 if retrying else None,
                            max_retries if retrying else None)
        _record_error(sessions, job_id, error)
        if retrying:
            raise RetryLater(exc, category) from exc
        raise


def _build(
    sessions: sessionmaker[Session], directory: Path, job_id: int, expected_kind: str | None, zone: tzinfo | None
) -> str | None:
    with transaction(sessions) as session:
        job = session.get(ReportJob, job_id)
        if job is None:
            logger.warning("report job %s does not exist; nothing to build", job_id)
            return None
        if job.status == JobStatus.done:
            logger.info("report job %s is already done: %s", job_id, job.file_path)
            return job.file_path
        kind, target = job.kind, (job.assignment_id, job.school_id)
        # A job left running by a worker that died is taken over; a duplicate build only replaces the file.
        session.execute(
            update(ReportJob).where(ReportJob.id == job_id, ReportJob.status != JobStatus.done)
            .values(status=JobStatus.running, finished_at=None)
        )
    if expected_kind is not None and kind != expected_kind:
        raise ValueError(f"报表任务 {job_id} 的类型是 {kind}，不是 {expected_kind}")
    builders = _builders()
    if kind not in builders:
        raise ValueError(f"未知的报表类型 {kind!r}")
    builder, target_field = builders[kind]
    target_id = target[0] if target_field == "assignment_id" else target[1]
    if target_id is None:
        raise ValueError(f"报表任务 {job_id} 缺少 {target_field}")
    path = directory / f"{kind}-{job_id}.xlsx"  # one name per job: a retry replaces, never adds, a file
    with sessions() as session:
        builder(session, target_id, path, zone=zone)
    _finish(sessions, job_id, file_path=str(path), kind=kind)
    logger.info("report job %s (%s) done: %s", job_id, kind, path)
    return str(path)


def _record_error(sessions: sessionmaker[Session], job_id: int, error: ReportError) -> None:
    """Queued again while a retry is coming, failed otherwise; a database that is away only gets logged."""
    status = JobStatus.queued if error.retrying else JobStatus.failed
    try:
        with transaction(sessions) as session:
            session.execute(
                update(ReportJob).where(ReportJob.id == job_id, ReportJob.status != JobStatus.done)
                .values(status=status, error=error.to_text(), finished_at=None if error.retrying else utcnow())
            )
    except Exception:
        logger.exception("could not record the failure of report job %s (%s)", job_id, error.category.code)


def _finish(sessions: sessionmaker[Session], job_id: int, *, file_path: str, kind: str) -> None:
    values: dict[str, Any] = {"status": JobStatus.done, "error": None, "finished_at": utcnow(),
                              "file_path": file_path}
    with transaction(sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id == job_id).values(**values))
        audit.record(session, "report.built", actor="worker", object_type="report_job", object_id=job_id, kind=kind)
