"""Progress of an assignment's grading, computed from the database for the web, the API and the CLI.

Essays are written one by one as the model finishes them, so the counts move essay by essay. The rate is the
measured throughput of the grading workers (every essay they finished lately and every essay they hold now,
whichever class it belongs to: one queue serves them all), and the ETA counts the essays in line ahead of this
assignment's as well as its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import Essay, EssayStatus
from shared.models.base import utcnow

RATE_WINDOW = timedelta(minutes=15)
WAITING = (EssayStatus.queued, EssayStatus.grading)


@dataclass(frozen=True)
class Progress:
    total: int
    queued: int
    grading: int
    graded: int
    failed: int
    essays_per_minute: float | None
    eta_seconds: int | None
    ahead: int = 0  # essays of other assignments in line before this one's (queued earlier, or being graded)

    @property
    def done(self) -> int:
        return self.graded + self.failed

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else int(100 * self.done / self.total)

    @property
    def finished(self) -> bool:
        return self.queued == 0 and self.grading == 0


def throughput(finishes: Sequence[tuple[datetime, datetime]], in_flight: int = 0) -> float | None:
    """Essays per minute the grading workers get through, from (claimed, finished) moments of essays graded lately.

    Two measures, the larger taken: finished essays over the time spent on them (first claim to last finish; idle
    time after is left out), and, while essays are being graded, Little's law — essays in flight over the mean time
    one takes. The first alone reads a batched engine's first answers as its speed (one essay in 100 s while twelve
    more are a few seconds from done); the second sees the batch. None until one essay has finished."""
    if not finishes:
        return None
    start = min(claimed for claimed, _ in finishes)
    end = max(finished for _, finished in finishes)
    over_span = len(finishes) / max((end - start).total_seconds() / 60, 1 / 60)
    if in_flight <= 0:
        return over_span
    latency_min = sum((finished - claimed).total_seconds() for claimed, finished in finishes) / len(finishes) / 60
    return max(over_span, in_flight / max(latency_min, 1 / 60))


def eta_seconds(remaining: int, ahead: int, rate: float | None) -> int | None:
    if remaining == 0:
        return 0
    if not rate:
        return None
    return int(round((remaining + ahead) / rate * 60))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)  # SQLite: naive UTC


def recent_finishes(session: Session, now: datetime | None = None) -> list[tuple[datetime, datetime]]:
    now = now or utcnow()
    rows = session.execute(
        select(Essay.claimed_at, Essay.finished_at).where(
            Essay.status == EssayStatus.graded, Essay.finished_at >= now - RATE_WINDOW, Essay.claimed_at.is_not(None)
        )
    ).all()
    return [(_aware(claimed), _aware(finished)) for claimed, finished in rows]


def assignment_progress(session: Session, assignment_id: int, now: datetime | None = None) -> Progress:
    counts = dict(
        session.execute(
            select(Essay.status, func.count()).where(Essay.assignment_id == assignment_id).group_by(Essay.status)
        ).all()
    )
    queued, grading = counts.get(EssayStatus.queued, 0), counts.get(EssayStatus.grading, 0)
    remaining = queued + grading
    ahead = 0
    if remaining:
        first_waiting = session.scalar(
            select(func.min(Essay.id)).where(Essay.assignment_id == assignment_id, Essay.status.in_(WAITING))
        )
        ahead = session.scalar(
            select(func.count()).where(
                Essay.status.in_(WAITING), Essay.assignment_id != assignment_id, Essay.id < first_waiting
            )
        ) or 0
    in_flight = session.scalar(select(func.count()).where(Essay.status == EssayStatus.grading)) or 0
    rate = throughput(recent_finishes(session, now), in_flight)
    return Progress(
        total=sum(counts.values()), queued=queued, grading=grading, graded=counts.get(EssayStatus.graded, 0),
        failed=counts.get(EssayStatus.failed, 0), essays_per_minute=rate,
        eta_seconds=eta_seconds(remaining, ahead, rate), ahead=ahead,
    )
