"""The evaluation task (``grading.evaluate``, gpu queue): ``yuejuan eval`` on a school's teacher-final grades,
started from the web, with its progress written to the job row as it goes.

A job is claimed queued → running once, so a redelivered task does not grade the set again; its files go to
``data_dir/evaluations/<job id>`` (rows.jsonl, summary.json, eval.xlsx), the same files the command writes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from services.worker.evaluation.command import write_outputs
from services.worker.evaluation.runner import grade_set
from services.worker.evaluation.sets import teacher_final_set
from shared.models import EvalJob, JobStatus, transaction
from shared.models.base import utcnow
from shared.prompts.rubric import RubricError, resolve_rubric
from shared.storage import evaluations_dir
from shared.tasks import EVAL_TASK, GPU_QUEUE

if TYPE_CHECKING:
    from services.worker.engine import Engine

logger = logging.getLogger(__name__)

NO_TEACHER_FINALS = "所选范围内没有教师评过分的作文（改分、二评或三评），无法评测。"


class EvalJobFailed(RuntimeError):
    """The job could not run (its failure is stored on the row for the page); raised for Celery to record."""


def register_eval_tasks(app: Celery) -> None:
    @app.task(name=EVAL_TASK, queue=GPU_QUEUE)
    def evaluate(job_id: int) -> dict[str, Any]:
        """Grade the job's teacher-final set with the loaded model and store the figures."""
        return run_eval_job(runtime.sessions(), runtime.engine(), job_id, data_dir=runtime.settings().data_dir,
                            token_budget=runtime.settings().batch_token_budget)


def run_eval_job(sessions: sessionmaker[Session], engine: Engine, job_id: int, *, data_dir: Path,
                 token_budget: int) -> dict[str, Any]:
    """Run one queued job to its end; returns its headline figures ({} when it was not queued any more)."""
    with transaction(sessions) as session:
        claimed = session.execute(
            update(EvalJob).where(EvalJob.id == job_id, EvalJob.status == JobStatus.queued)
            .values(status=JobStatus.running, started_at=utcnow(), updated_at=utcnow())
        ).rowcount
        job = session.get(EvalJob, job_id) if claimed else None
        if job is None:
            logger.info("evaluation job %s is not queued (done, running or deleted); nothing to do", job_id)
            return {}
        rubric_ref, assignment_id, school_id, limit = job.rubric_ref, job.assignment_id, job.school_id, job.essay_limit
    try:
        rubric = resolve_rubric(rubric_ref)
        with sessions() as session:
            essays = teacher_final_set(session, assignment_id=assignment_id,
                                       school_id=None if assignment_id is not None else school_id)
        if not essays:
            raise EvalJobFailed(NO_TEACHER_FINALS)
        essays = essays[-limit:] if limit else essays  # the set is in essay order: the newest are last
        _progress(sessions, job_id, 0, 3 * len(essays), essays=len(essays))
        rows = grade_set(engine, essays, rubric, token_budget, rubric_ref=rubric_ref,
                         progress=lambda done, total: _progress(sessions, job_id, done, total))
        directory = evaluations_dir(data_dir) / str(job_id)
        output = write_outputs(rows, rubric, directory)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, EvalJobFailed | RubricError) else f"评测中断：{type(exc).__name__}"
        _finish(sessions, job_id, JobStatus.failed, error=reason)
        logger.exception("evaluation job %s failed", job_id)
        if isinstance(exc, EvalJobFailed):
            raise
        raise EvalJobFailed(reason) from exc
    headline = output.summary.headline()
    _finish(sessions, job_id, JobStatus.done, headline=headline,
            directory=str(directory.relative_to(data_dir)) if directory.is_relative_to(data_dir) else str(directory))
    logger.info("evaluation job %s: %s essays, QWK %s", job_id, headline.get("essays"), headline.get("qwk_total"))
    return headline


def _progress(sessions: sessionmaker[Session], job_id: int, done: int, total: int, **values: Any) -> None:
    with transaction(sessions) as session:
        session.execute(update(EvalJob).where(EvalJob.id == job_id)
                        .values(done=done, total=total, updated_at=utcnow(), **values))


def _finish(sessions: sessionmaker[Session], job_id: int, status: JobStatus, **values: Any) -> None:
    with transaction(sessions) as session:
        session.execute(update(EvalJob).where(EvalJob.id == job_id)
                        .values(status=status, finished_at=utcnow(), updated_at=utcnow(), **values))
