"""What end-to-end grading tests and bench/chaos.py read back: essay states and grades per essay, exactly."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.celery_app import make_celery
from shared.models import Essay, Grade
from shared.queueing import enqueue_assignment
from shared.settings import Settings


def enqueue_class(settings: Settings, sessions: sessionmaker[Session], assignment_id: int) -> int:
    """Send an assignment's queued essays through the configured broker, as the web does; returns the tasks sent."""
    with sessions() as session:
        return enqueue_assignment(session, make_celery(settings), assignment_id, settings.batch_token_budget)


def status_counts(sessions: sessionmaker[Session], assignment_id: int) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(
            select(Essay.status, func.count()).where(Essay.assignment_id == assignment_id).group_by(Essay.status)
        ).all()
    return {str(status): n for status, n in rows}


def grades_per_essay(sessions: sessionmaker[Session], essay_ids: Sequence[int]) -> dict[int, int]:
    """Essay id → number of grade versions (0 for an essay never graded)."""
    with sessions() as session:
        rows = session.execute(
            select(Essay.id, func.count(Grade.id)).select_from(Essay).outerjoin(Grade, Grade.essay_id == Essay.id)
            .where(Essay.id.in_(list(essay_ids))).group_by(Essay.id)
        ).all()
    return {essay_id: n for essay_id, n in rows}
