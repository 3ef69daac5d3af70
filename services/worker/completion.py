"""What happens when an assignment has no essay left to grade: its training plans and a class workbook at once,
and the workbook again once the plans are written."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Assignment, Essay, EssayStatus, Grade, JobStatus, ReportJob, transaction
from shared.queueing import TaskSender
from shared.report_jobs import create_class_job, fail_unsent
from shared.tasks import CLASS_WORKBOOK_TASK, TRAINING_PLANS_TASK, ReportKind

logger = logging.getLogger(__name__)

LIVE_JOB_STATUSES = (JobStatus.queued, JobStatus.running, JobStatus.done)
# The assignments of some essays (bound as `ids`) that have none left queued or grading; built once.
_FINISHED_ASSIGNMENTS = (
    select(Essay.assignment_id)
    .where(Essay.assignment_id.in_(select(Essay.assignment_id).where(Essay.id.in_(bindparam("ids", expanding=True)))))
    .group_by(Essay.assignment_id)
    .having(func.count().filter(Essay.status.in_([EssayStatus.queued, EssayStatus.grading])) == 0)
    .order_by(Essay.assignment_id)
)


def on_assignment_complete(sender: TaskSender, sessions: sessionmaker[Session], assignment_id: int) -> int | None:
    """Create the assignment's class report job, send ``grading.training_plans`` and the job's workbook task;
    returns the new job id.

    The workbook does not wait for the plans: it is built at once (its plans column says 生成中) and built again
    when the plans are written (``refresh_after_plans``). Safe to call more than once: under a row lock on the
    assignment, nothing is done while essays are still queued or grading, or when a queued, running or finished
    class job already exists that is newer than the last change to the assignment's grades.
    """
    with transaction(sessions) as session:
        job_id = _create_job(session, assignment_id)
    if job_id is None:
        return None
    # Plans first (priority 0: not behind the backlog): if the broker fails between the two, the job is failed and
    # the next attempt sends both again (a second set of plans at worst); the other order could leave a live job
    # and no plans coming.
    _send_or_fail(sender, sessions, job_id, [(TRAINING_PLANS_TASK, [assignment_id], {"priority": 0}),
                                             (CLASS_WORKBOOK_TASK, [job_id], {})])
    logger.info("assignment %s complete: training plans sent, class report job %s sent", assignment_id, job_id)
    return job_id


def refresh_after_plans(sender: TaskSender, sessions: sessionmaker[Session], assignment_id: int) -> int | None:
    """Get the assignment's new training plans into a class workbook; returns the job that will show them.

    A class job still queued reads them when it runs (nothing is sent); otherwise a new job is created and its
    task sent, whatever jobs are up to date with the grades (the completion check would suppress it). Nothing is
    done while essays are being graded again: their completion brings new plans and a new workbook.
    """
    with transaction(sessions) as session:
        if not _lock_finished(session, assignment_id):
            return None
        queued = session.scalar(
            select(ReportJob.id)
            .where(ReportJob.kind == ReportKind.class_workbook, ReportJob.assignment_id == assignment_id,
                   ReportJob.status == JobStatus.queued)
            .order_by(ReportJob.id.desc()).limit(1)
        )
        if queued is not None:
            logger.info("assignment %s: queued class report job %s will show the new plans", assignment_id, queued)
            return queued
        job = create_class_job(session, assignment_id)
        if job is None:
            return None
        job_id = job.id
    _send_or_fail(sender, sessions, job_id, [(CLASS_WORKBOOK_TASK, [job_id], {})])
    logger.info("assignment %s: training plans written, class report job %s sent", assignment_id, job_id)
    return job_id


def on_essays_finished(sender: TaskSender, sessions: sessionmaker[Session], essay_ids: Sequence[int]) -> list[int]:
    """Call ``on_assignment_complete`` for each assignment of these essays that has nothing left to grade;
    returns the new job ids.

    Meant for the end of a grading task (all of its essay ids, whatever became of them), after its writes
    have committed: of two tasks finishing an assignment's last essays at once, the later check sees both.
    One query usually settles it; ``on_assignment_complete`` checks again under its lock.
    """
    if not essay_ids:
        return []
    # Committed, not rolled back, although it only reads: psycopg forgets its prepared statements on every
    # rollback, and this runs after every grading task, so the task's statements would never get prepared.
    with transaction(sessions) as session:
        finished = session.scalars(_FINISHED_ASSIGNMENTS, {"ids": list(essay_ids)}).all()
    created = [on_assignment_complete(sender, sessions, assignment_id) for assignment_id in finished]
    return [job_id for job_id in created if job_id is not None]


def _send_or_fail(
    sender: TaskSender, sessions: sessionmaker[Session], job_id: int,
    tasks: Sequence[tuple[str, list[int], dict[str, Any]]],
) -> None:
    """Send (name, args, options) in order; when one cannot be sent the job is failed and the error raised: a job
    nobody will run must not block the next attempt (failed jobs do not count as existing) and gets 重新生成."""
    for name, args, options in tasks:
        try:
            sender.send_task(name, args=args, **options)
        except Exception as exc:
            with transaction(sessions) as session:
                fail_unsent(session, job_id, f"could not send {name}: {exc}")
            raise


def _lock_finished(session: Session, assignment_id: int) -> bool:
    """Lock the assignment's row; True when it exists and has essays, none of them queued or grading."""
    if session.scalar(select(Assignment.id).where(Assignment.id == assignment_id).with_for_update()) is None:
        logger.warning("assignment %s does not exist; no report", assignment_id)
        return False
    statuses = dict(
        session.execute(
            select(Essay.status, func.count()).where(Essay.assignment_id == assignment_id).group_by(Essay.status)
        ).all()
    )
    if not statuses:
        logger.info("assignment %s has no essays; no report", assignment_id)
        return False
    if statuses.get(EssayStatus.queued) or statuses.get(EssayStatus.grading):
        logger.info("assignment %s still has essays to grade; no report yet", assignment_id)
        return False
    return True


def _create_job(session: Session, assignment_id: int) -> int | None:
    if not _lock_finished(session, assignment_id):
        return None
    last_grade = session.scalar(
        select(func.max(Grade.created_at)).join(Essay, Grade.essay_id == Essay.id)
        .where(Essay.assignment_id == assignment_id)
    )
    last_finish = session.scalar(select(func.max(Essay.finished_at)).where(Essay.assignment_id == assignment_id))
    last_change = max((t for t in (last_grade, last_finish) if t is not None), default=None)
    existing = select(ReportJob.id).where(
        ReportJob.kind == ReportKind.class_workbook,
        ReportJob.assignment_id == assignment_id,
        ReportJob.status.in_(LIVE_JOB_STATUSES),
    )
    if last_change is not None:
        existing = existing.where(ReportJob.created_at >= last_change)
    if session.scalar(existing.limit(1)) is not None:
        logger.info("assignment %s already has an up-to-date class report job", assignment_id)
        return None
    job = create_class_job(session, assignment_id)
    return job.id if job is not None else None
