"""What happens when an assignment has no essay left to grade: one class report job, then training plans."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker.reports.names import CLASS_REPORT, TRAINING_PLANS_TASK
from shared.models import Assignment, Classroom, Essay, EssayStatus, Grade, JobStatus, ReportJob, transaction
from shared.models.base import utcnow
from shared.queueing import TaskSender

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
    """Create the assignment's class report job and send ``grading.training_plans``; returns the new job id.

    Safe to call more than once: under a row lock on the assignment, nothing is done while essays are still
    queued or grading, or when a queued, running or finished class job already exists that is newer than the
    last change to the assignment's grades. The training-plans task sends the workbook task when it is done.
    """
    with transaction(sessions) as session:
        job_id = _create_job(session, assignment_id)
    if job_id is None:
        return None
    try:
        sender.send_task(TRAINING_PLANS_TASK, args=[assignment_id], priority=0)  # not behind the backlog
    except Exception as exc:
        # A job nobody will run must not block the next attempt: failed jobs do not count as existing.
        with transaction(sessions) as session:
            session.execute(
                update(ReportJob)
                .where(ReportJob.id == job_id, ReportJob.status == JobStatus.queued)
                .values(status=JobStatus.failed, error=f"无法发送训练计划任务：{exc}", finished_at=utcnow())
            )
        raise
    logger.info("assignment %s complete: class report job %s, training plans sent", assignment_id, job_id)
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


def _create_job(session: Session, assignment_id: int) -> int | None:
    target = session.execute(
        select(Assignment.id, Assignment.classroom_id, Classroom.school_id)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Assignment.id == assignment_id)
        .with_for_update(of=Assignment)
    ).one_or_none()
    if target is None:
        logger.warning("assignment %s does not exist; no report", assignment_id)
        return None
    statuses = dict(
        session.execute(
            select(Essay.status, func.count()).where(Essay.assignment_id == assignment_id).group_by(Essay.status)
        ).all()
    )
    if not statuses:
        logger.info("assignment %s has no essays; no report", assignment_id)
        return None
    if statuses.get(EssayStatus.queued) or statuses.get(EssayStatus.grading):
        logger.info("assignment %s still has essays to grade; no report yet", assignment_id)
        return None
    last_grade = session.scalar(
        select(func.max(Grade.created_at)).join(Essay, Grade.essay_id == Essay.id)
        .where(Essay.assignment_id == assignment_id)
    )
    last_finish = session.scalar(select(func.max(Essay.finished_at)).where(Essay.assignment_id == assignment_id))
    last_change = max((t for t in (last_grade, last_finish) if t is not None), default=None)
    existing = select(ReportJob.id).where(
        ReportJob.kind == CLASS_REPORT,
        ReportJob.assignment_id == assignment_id,
        ReportJob.status.in_(LIVE_JOB_STATUSES),
    )
    if last_change is not None:
        existing = existing.where(ReportJob.created_at >= last_change)
    if session.scalar(existing.limit(1)) is not None:
        logger.info("assignment %s already has an up-to-date class report job", assignment_id)
        return None
    job = ReportJob(
        kind=CLASS_REPORT, school_id=target.school_id, classroom_id=target.classroom_id, assignment_id=assignment_id,
        status=JobStatus.queued,
    )
    session.add(job)
    session.flush()
    return job.id
