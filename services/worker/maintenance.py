"""Scheduled housekeeping, sent by ``yuejuan beat`` and run on the reports queue (no model needed).

``maintenance.purge_expired`` deletes what is past the retention period. ``maintenance.requeue_stale`` sends
essays again that have waited in ``queued`` with no task in the gpu queue (for example when the broker was
down at upload time); a duplicate task is harmless because essays are claimed with a conditional update.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from services.worker.celery_app import GPU_QUEUE, REPORTS_QUEUE
from shared.models import Essay, EssayStatus
from shared.models.base import utcnow
from shared.queueing import TaskSender, enqueue_essays, queue_depths
from shared.retention import run_retention
from shared.settings import Settings

logger = logging.getLogger(__name__)

PURGE_TASK = "maintenance.purge_expired"
REQUEUE_TASK = "maintenance.requeue_stale"
STALE_AFTER = timedelta(minutes=10)


def beat_schedule() -> dict[str, dict[str, Any]]:
    """What ``yuejuan beat`` sends: the purge every night at 03:00 (Beijing time), the sweep every 10 minutes."""
    return {
        "purge-expired": {"task": PURGE_TASK, "schedule": crontab(hour=3, minute=0),
                          "options": {"queue": REPORTS_QUEUE}},
        "requeue-stale": {"task": REQUEUE_TASK, "schedule": STALE_AFTER.total_seconds(),
                          "options": {"queue": REPORTS_QUEUE, "expires": STALE_AFTER.total_seconds()}},
    }


def register_maintenance_tasks(app: Celery) -> None:
    @app.task(name=PURGE_TASK, queue=REPORTS_QUEUE)
    def purge_expired() -> dict[str, int] | None:
        """Delete essays, grades, training plans and reports older than ``retention_days``."""
        settings = runtime.settings()
        return run_retention(runtime.sessions(), settings.data_dir, settings.retention_days, actor="retention")

    @app.task(name=REQUEUE_TASK, queue=REPORTS_QUEUE)
    def requeue_stale() -> int:
        """Send grading tasks again for essays stranded in ``queued``; returns the number of tasks sent."""
        return run_requeue_stale(app, runtime.sessions(), runtime.settings())


def stale_essays(session: Session, before: datetime) -> list[tuple[int, int]]:
    """(id, chars) of essays queued since before ``before`` (by their last claim, or their upload)."""
    waiting_since = func.coalesce(Essay.claimed_at, Essay.created_at)
    rows = session.execute(
        select(Essay.id, Essay.char_count).where(Essay.status == EssayStatus.queued, waiting_since < before)
    ).all()
    return [(row.id, row.char_count) for row in rows]


def run_requeue_stale(
    sender: TaskSender, sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> int:
    """Re-send stale essays, but only while the gpu queue is empty (otherwise workers will still reach them)."""
    depth = queue_depths(settings.resolved_broker_url(), [GPU_QUEUE])[GPU_QUEUE]
    if depth:
        return 0
    with sessions() as session:
        essays = stale_essays(session, (now or utcnow()) - STALE_AFTER)
    if not essays:
        return 0
    logger.warning("re-sending %s essays that waited in 'queued' with no task in the gpu queue", len(essays))
    return enqueue_essays(sender, essays, settings.batch_token_budget)
