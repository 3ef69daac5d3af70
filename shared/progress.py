"""Progress of an assignment's grading, computed from the database for the web and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import Essay, EssayStatus
from shared.models.base import utcnow

RATE_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Progress:
    total: int
    queued: int
    grading: int
    graded: int
    failed: int
    essays_per_minute: float | None
    eta_seconds: int | None

    @property
    def done(self) -> int:
        return self.graded + self.failed

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else int(100 * self.done / self.total)

    @property
    def finished(self) -> bool:
        return self.queued == 0 and self.grading == 0


def assignment_progress(session: Session, assignment_id: int) -> Progress:
    counts = dict(
        session.execute(
            select(Essay.status, func.count()).where(Essay.assignment_id == assignment_id).group_by(Essay.status)
        ).all()
    )
    now = utcnow()
    recent = session.execute(
        select(func.count(), func.min(Essay.claimed_at)).where(
            Essay.assignment_id == assignment_id,
            Essay.status == EssayStatus.graded,
            Essay.finished_at >= now - RATE_WINDOW,
        )
    ).one()
    rate: float | None = None
    recent_count, first_claim = recent
    if recent_count and first_claim is not None:
        if first_claim.tzinfo is None:  # SQLite returns naive UTC datetimes
            first_claim = first_claim.replace(tzinfo=now.tzinfo)
        minutes = max((now - first_claim).total_seconds() / 60, 1 / 60)
        rate = recent_count / minutes
    queued, grading = counts.get(EssayStatus.queued, 0), counts.get(EssayStatus.grading, 0)
    remaining = queued + grading
    eta = int(remaining / rate * 60) if rate and remaining else (0 if remaining == 0 else None)
    return Progress(
        total=sum(counts.values()), queued=queued, grading=grading, graded=counts.get(EssayStatus.graded, 0),
        failed=counts.get(EssayStatus.failed, 0), essays_per_minute=rate, eta_seconds=eta,
    )
