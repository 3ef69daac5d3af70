"""Scheduled housekeeping, sent by ``yuejuan beat`` and run on the reports queue (no model needed).

``maintenance.purge_expired`` deletes what is past the retention period. ``maintenance.requeue_stale`` (the sweep,
every ``sweep_interval_s``) takes back essays whose grading task is gone (their lease ran out: a killed worker,
a batch past the hard time limit, a broker that lost the task) and sends again essays that wait in ``queued``
with no task in the broker (the broker was down at upload, or lost its data), and the workbook task of report
jobs left queued with no task. It runs while other classes are grading; a duplicate task is harmless because
essays are claimed with a conditional update and a finished report job is not built again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime, store
from services.worker.batch import PROCESS_LOST, BatchRules, recover_claim
from services.worker.reports.tasks import RETRY_MAX_DELAY_S
from shared.models import ChatTurn, Essay, EssayStatus, JobStatus, ReportJob, TurnStatus
from shared.models.base import utcnow
from shared.queueing import TaskSender, enqueue_essays, essays_in_broker, task_args_in_broker
from shared.retention import run_retention
from shared.settings import Settings
from shared.tasks import CHAT_QUEUE, CHAT_TASK, GPU_QUEUE, PURGE_TASK, REPORTS_QUEUE, SWEEP_TASK, TASK_FOR_KIND
from shared.upload_previews import sweep_previews

logger = logging.getLogger(__name__)

REQUEUE_TASK = SWEEP_TASK


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """What ``yuejuan beat`` sends: the purge every night at 03:00 (Beijing time), the sweep every
    ``sweep_interval_s`` (expiring after one interval, so sweeps never pile up behind a stopped worker)."""
    every = float(settings.sweep_interval_s)
    return {
        "purge-expired": {"task": PURGE_TASK, "schedule": crontab(hour=3, minute=0),
                          "options": {"queue": REPORTS_QUEUE}},
        "requeue-stale": {"task": REQUEUE_TASK, "schedule": every,
                          "options": {"queue": REPORTS_QUEUE, "expires": every}},
    }


def register_maintenance_tasks(app: Celery) -> None:
    @app.task(name=PURGE_TASK, queue=REPORTS_QUEUE)
    def purge_expired() -> dict[str, int] | None:
        """Delete essays, grades, training plans and reports older than ``retention_days``."""
        settings = runtime.settings()
        return run_retention(runtime.sessions(), settings.data_dir, settings.retention_days, actor="retention")

    @app.task(name=REQUEUE_TASK, queue=REPORTS_QUEUE)
    def requeue_stale() -> dict[str, int]:
        """Recover abandoned claims and re-send essays no task holds; returns the counts."""
        return run_sweep(app, runtime.sessions(), runtime.settings())


def stale_essays(session: Session, before: datetime) -> list[tuple[int, int]]:
    """(id, chars) of essays queued since before ``before`` (by their last claim, or their upload)."""
    waiting_since = func.coalesce(Essay.claimed_at, Essay.created_at)
    rows = session.execute(
        select(Essay.id, Essay.char_count).where(Essay.status == EssayStatus.queued, waiting_since < before)
    ).all()
    return [(row.id, row.char_count) for row in rows]


def run_sweep(
    sender: TaskSender, sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> dict[str, int]:
    """Recover claims whose lease ran out, then send again the stale queued essays that no task in the broker
    holds (first in line), and delete expired upload previews. Returns ``recovered`` (essays taken back),
    ``resent`` (essays sent again), ``reports_resent``, ``chat_resent`` and ``previews_expired``."""
    now = now or utcnow()
    rules = BatchRules(max_attempts=settings.max_grading_attempts, token_budget=settings.batch_token_budget,
                       lease_s=settings.lease_s)
    recovered = sum(
        len(recover_claim(sender, sessions, token, rules, PROCESS_LOST).essay_ids)
        for token in store.expired_claims(sessions, now)
    )
    with sessions() as session:
        waiting = stale_essays(session, now - timedelta(seconds=settings.stale_after_s))
    missing: list[tuple[int, int]] = []
    if waiting:
        held = essays_in_broker(settings.resolved_broker_url(), GPU_QUEUE, delivered_within_s=settings.stale_after_s)
        missing = [(essay_id, chars) for essay_id, chars in waiting if essay_id not in held]
    if missing:
        logger.warning("sending again %s queued essays that no grading task holds", len(missing))
        enqueue_essays(sender, missing, settings.batch_token_budget, priority=0)
    # Upload previews (essay text and names nobody confirmed) leave within one sweep of expiring, not at the
    # next upload or the nightly purge.
    return {"recovered": recovered, "resent": len(missing),
            "reports_resent": resend_lost_report_jobs(sender, sessions, settings, now),
            "chat_resent": resend_lost_chat_turns(sender, sessions, settings, now),
            "previews_expired": sweep_previews(settings.data_dir, now=now.timestamp())}


def resend_lost_report_jobs(
    sender: TaskSender, sessions: sessionmaker[Session], settings: Settings, now: datetime
) -> int:
    """Send again the workbook task of report jobs queued for ``stale_after_s`` that no task in the reports queue
    holds: a grading process that died between committing a class job and sending its task (or a wiped broker)
    left them 排队中 for good. A task delivered to a worker counts as held for as long as the longest retry
    back-off, so a job waiting out its back-off is not hurried."""
    with sessions() as session:
        waiting = session.execute(
            select(ReportJob.id, ReportJob.kind).where(
                ReportJob.status == JobStatus.queued,
                ReportJob.created_at < now - timedelta(seconds=settings.stale_after_s),
            )
        ).all()
    if not waiting:
        return 0
    held = {int(args[0]) for args in task_args_in_broker(
        settings.resolved_broker_url(), REPORTS_QUEUE, set(TASK_FOR_KIND.values()),
        delivered_within_s=RETRY_MAX_DELAY_S + settings.stale_after_s,
    )}
    lost = [(job_id, kind) for job_id, kind in waiting if job_id not in held and kind in TASK_FOR_KIND]
    for job_id, kind in lost:
        sender.send_task(TASK_FOR_KIND[kind], args=[job_id])
    if lost:
        logger.warning("sending again %s queued report jobs that no task holds: %s", len(lost),
                       [job_id for job_id, _ in lost])
    return len(lost)


def resend_lost_chat_turns(
    sender: TaskSender, sessions: sessionmaker[Session], settings: Settings, now: datetime
) -> int:
    """Send again the task of chat turns queued for ``stale_after_s`` that no task in the chat queue holds: the web
    stores a turn before sending its task, so a broker away at that moment (or a wiped broker) left the student's
    question 排队中 for good. The task claims its turn queued → streaming, so a turn is never answered twice."""
    with sessions() as session:
        waiting = session.scalars(select(ChatTurn.id).where(
            ChatTurn.status == TurnStatus.queued, ChatTurn.created_at < now - timedelta(seconds=settings.stale_after_s)
        )).all()
    if not waiting:
        return 0
    held = {int(args[0]) for args in task_args_in_broker(
        settings.resolved_broker_url(), CHAT_QUEUE, {CHAT_TASK}, delivered_within_s=settings.stale_after_s)}
    lost = [turn_id for turn_id in waiting if turn_id not in held]
    for turn_id in lost:
        sender.send_task(CHAT_TASK, args=[turn_id])
    if lost:
        logger.warning("sending again %s queued chat turns that no task holds: %s", len(lost), lost)
    return len(lost)
