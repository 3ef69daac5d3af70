"""Report tasks, registered by name: the two workbooks (reports queue) and training plans (gpu queue).

Workbook tasks never load a model; they read through ``runtime.sessions()`` only. A job moves
queued → running → done | failed; a done job is not rebuilt, and a failure is recorded, then re-raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from services.worker.celery_app import GPU_QUEUE, REPORTS_QUEUE
from services.worker.reports.names import (
    CLASS_REPORT,
    CLASS_WORKBOOK_TASK,
    SCHOOL_REPORT,
    SCHOOL_WORKBOOK_TASK,
    TRAINING_PLANS_TASK,
)
from shared import audit
from shared.models import JobStatus, ReportJob, transaction
from shared.models.base import utcnow
from shared.queueing import TaskSender

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000
Builder = Callable[[Session, int, Path], Path]


def register_report_tasks(app: Celery) -> None:
    @app.task(name=CLASS_WORKBOOK_TASK, queue=REPORTS_QUEUE)
    def class_workbook(report_job_id: int) -> str | None:
        """Build the class workbook of a report job (kind ``class_workbook``)."""
        return run_report_job(runtime.sessions(), reports_dir(), report_job_id, CLASS_REPORT)

    @app.task(name=SCHOOL_WORKBOOK_TASK, queue=REPORTS_QUEUE)
    def school_workbook(report_job_id: int) -> str | None:
        """Build the school workbook of a report job (kind ``school_workbook``)."""
        return run_report_job(runtime.sessions(), reports_dir(), report_job_id, SCHOOL_REPORT)

    @app.task(name=TRAINING_PLANS_TASK, queue=GPU_QUEUE)
    def training_plans(assignment_id: int) -> int:
        """Write a new training plan for each student of the assignment, then send its class workbook."""
        return run_training_plans(app, runtime.sessions(), runtime.engine(), assignment_id)


def reports_dir() -> Path:
    return (runtime.settings().data_dir / "reports").resolve()


def _builders() -> dict[str, tuple[Builder, str]]:
    from services.worker.reports.class_workbook import build_class_workbook
    from services.worker.reports.school_workbook import build_school_workbook

    return {CLASS_REPORT: (build_class_workbook, "assignment_id"), SCHOOL_REPORT: (build_school_workbook, "school_id")}


def run_report_job(
    sessions: sessionmaker[Session], directory: Path, job_id: int, expected_kind: str | None = None
) -> str | None:
    """Build a report job's workbook; returns its file path (None when the job no longer exists)."""
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
            .values(status=JobStatus.running, error=None, finished_at=None)
        )
    try:
        if expected_kind is not None and kind != expected_kind:
            raise ValueError(f"报表任务 {job_id} 的类型是 {kind}，不是 {expected_kind}")
        builders = _builders()
        if kind not in builders:
            raise ValueError(f"未知的报表类型 {kind!r}")
        builder, target_field = builders[kind]
        target_id = target[0] if target_field == "assignment_id" else target[1]
        if target_id is None:
            raise ValueError(f"报表任务 {job_id} 缺少 {target_field}")
        path = directory / f"{kind}-{job_id}.xlsx"
        with sessions() as session:
            builder(session, target_id, path)
    except Exception as exc:
        logger.exception("report job %s (%s) failed", job_id, kind)
        _finish(sessions, job_id, JobStatus.failed, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        raise
    _finish(sessions, job_id, JobStatus.done, file_path=str(path), kind=kind)
    logger.info("report job %s (%s) done: %s", job_id, kind, path)
    return str(path)


def _finish(
    sessions: sessionmaker[Session], job_id: int, status: JobStatus, *, error: str | None = None,
    file_path: str | None = None, kind: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
    if file_path is not None:
        values["file_path"] = file_path
    with transaction(sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id == job_id).values(**values))
        if status == JobStatus.done:
            audit.record(session, "report.built", actor="worker", object_type="report_job", object_id=job_id,
                         kind=kind)


def run_training_plans(sender: TaskSender, sessions: sessionmaker[Session], engine: Any, assignment_id: int) -> int:
    """Generate the assignment's training plans, then send the workbook task (also when plans failed)."""
    from services.worker.reports.training import generate_plans_for_assignment

    try:
        stored = generate_plans_for_assignment(sessions, engine, assignment_id)
    except Exception:
        logger.exception("training plans for assignment %s failed; the workbook is built without new plans",
                         assignment_id)
        try:
            send_class_workbook(sender, sessions, assignment_id)
        except Exception:  # the plans' failure is the one to report
            logger.exception("could not send the class workbook for assignment %s", assignment_id)
        raise
    send_class_workbook(sender, sessions, assignment_id)
    return stored


def send_class_workbook(sender: TaskSender, sessions: sessionmaker[Session], assignment_id: int) -> int | None:
    """Send the workbook task for the assignment's newest queued class job; returns the job id, if any."""
    with sessions() as session:
        job_id = session.scalar(
            select(ReportJob.id)
            .where(ReportJob.kind == CLASS_REPORT, ReportJob.assignment_id == assignment_id,
                   ReportJob.status == JobStatus.queued)
            .order_by(ReportJob.id.desc())
            .limit(1)
        )
    if job_id is None:
        logger.info("assignment %s has no queued class report job; no workbook sent", assignment_id)
        return None
    sender.send_task(CLASS_WORKBOOK_TASK, args=[job_id])
    return job_id
