"""Retention: essays (with their grades), training plans and reports older than the configured period are purged.

Run daily by Celery beat (``maintenance.purge_expired``) and on demand by ``yuejuan purge``. An assignment
left without essays once it is past the period goes too; rosters and accounts stay until erased explicitly.
The same run sweeps upload previews past their two hours (``shared.upload_previews``): essays and names that
were never confirmed do not stay on disk until someone uploads again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from shared import audit
from shared.erasure import Erased, erase_essays, erase_report_jobs, flush_deleted_pages
from shared.models import (
    Assignment,
    ChatSession,
    ChatTurn,
    Essay,
    EssayStatus,
    ReportJob,
    TrainingPlan,
    abandoned_claim,
    transaction,
)
from shared.models.base import utcnow
from shared.storage import remove_stored_files
from shared.upload_previews import sweep_previews

logger = logging.getLogger(__name__)

PURGE_ACTION = "retention.purge"


def retention_cutoff(retention_days: int, now: datetime | None = None) -> datetime | None:
    """The moment before which data is expired; None when retention is disabled (0 days)."""
    if retention_days <= 0:
        return None
    return (now or utcnow()) - timedelta(days=retention_days)


def purge_expired(session: Session, cutoff: datetime) -> Erased:
    """Delete everything created before ``cutoff`` in the caller's transaction (files are returned, not removed)."""
    purged = Erased()
    # An essay a live task holds is left for the next run rather than pulled from under it; one whose task is
    # gone (its lease ran out) is as old as its upload.
    erase_essays(session, purged, select(Essay.id).where(
        Essay.created_at < cutoff, or_(Essay.status != EssayStatus.grading, abandoned_claim(utcnow()))
    ))
    result = session.execute(delete(TrainingPlan).where(TrainingPlan.created_at < cutoff))
    purged.counts["training_plans"] += result.rowcount or 0
    # Student chats: a conversation idle since before the cutoff goes with its turns (questions and answers).
    idle = select(ChatSession.id).where(ChatSession.last_active_at < cutoff)
    purged.counts["chat_turns"] += session.execute(delete(ChatTurn).where(ChatTurn.session_id.in_(idle))).rowcount or 0
    purged.counts["chat_sessions"] += session.execute(
        delete(ChatSession).where(ChatSession.last_active_at < cutoff)).rowcount or 0
    erase_report_jobs(session, purged, ReportJob.created_at < cutoff)
    empty = ~exists().where(Essay.assignment_id == Assignment.id)
    stale = list(session.scalars(select(Assignment.id).where(Assignment.created_at < cutoff, empty)))
    if stale:
        erase_report_jobs(session, purged, ReportJob.assignment_id.in_(stale))
        result = session.execute(delete(Assignment).where(Assignment.id.in_(stale)))
        purged.counts["assignments"] += result.rowcount or 0
    logger.info("retention purge before %s: %s", cutoff.isoformat(), purged.audit_details() or "nothing expired")
    return purged


def run_retention(
    sessions: sessionmaker[Session], data_dir: Path, retention_days: int, *, actor: str, now: datetime | None = None
) -> dict[str, int] | None:
    """Sweep expired upload previews, purge, audit (counts only) and remove the expired report files.

    None when retention is disabled (nothing is touched; the web still sweeps previews at each upload).
    A preview expires long before any retention period ends, so the preview sweep needs no cutoff of its own.
    """
    now = now or utcnow()
    cutoff = retention_cutoff(retention_days, now)
    if cutoff is None:
        return None
    previews = sweep_previews(data_dir, now=now.timestamp())
    with transaction(sessions) as session:
        purged = purge_expired(session, cutoff)
        purged.counts["upload_previews"] += previews
        audit.record(session, PURGE_ACTION, actor=actor, retention_days=retention_days, **purged.audit_details())
    flush_deleted_pages(sessions)
    files = remove_stored_files(data_dir, purged.files)
    return {**purged.audit_details(), "files": files}
