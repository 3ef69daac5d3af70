"""Progress counts essay by essay; the rate is the grading workers' measured throughput over every class, and the
ETA counts the essays in line before this assignment's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Essay, EssayStatus, make_engine, make_session_factory, transaction
from shared.progress import assignment_progress, eta_seconds, throughput
from tests.factories import make_class

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_throughput_is_essays_over_the_time_spent_on_them() -> None:
    start = NOW - timedelta(minutes=10)
    # One batch of 6 claimed at once, finished one by one over 3 minutes; then idle (not counted).
    finishes = [(start, start + timedelta(seconds=30 * k)) for k in range(1, 7)]
    assert throughput(finishes) == 2.0
    assert throughput([]) is None and throughput([], in_flight=5) is None
    # A batched engine's first answer: 100 s after the claim, five more of its batch still in flight. Over the span
    # that is 0.6 a minute; the batch moves at 5 / (100 s) = 3 a minute.
    first = [(start, start + timedelta(seconds=100))]
    assert throughput(first) == 0.6
    assert throughput(first, in_flight=5) == 3.0
    assert throughput(finishes, in_flight=1) == 2.0  # one essay in flight, 105 s a piece: the span measure is larger
    assert eta_seconds(remaining=4, ahead=6, rate=2.0) == 300
    assert eta_seconds(remaining=0, ahead=6, rate=None) == 0
    assert eta_seconds(remaining=3, ahead=0, rate=None) is None


def _set(sessions: sessionmaker[Session], ids: list[int], status: EssayStatus, claimed: datetime | None = None,
         finished: datetime | None = None) -> None:
    with transaction(sessions) as session:
        session.execute(update(Essay).where(Essay.id.in_(ids)).values(status=status, claimed_at=claimed,
                                                                       finished_at=finished))


def test_progress_moves_per_essay_and_the_eta_counts_the_line_ahead(sqlite_url: str) -> None:
    sessions = make_session_factory(make_engine(sqlite_url))
    earlier = make_class(sessions, [f"早{n}。" for n in range(5)], tag=uuid.uuid4().hex[:6])
    mine = make_class(sessions, [f"我{n}。" for n in range(4)], tag=uuid.uuid4().hex[:6])
    start = NOW - timedelta(minutes=5)
    # The earlier class: 3 graded over 90 s of one batch (2 a minute), 2 still waiting ahead of ours.
    for k, essay_id in enumerate(earlier.essay_ids[:3], start=1):
        _set(sessions, [essay_id], EssayStatus.graded, start, start + timedelta(seconds=30 * k))
    _set(sessions, earlier.essay_ids[3:4], EssayStatus.grading, start)
    with sessions() as session:
        progress = assignment_progress(session, mine.assignment_id, now=NOW)
    assert (progress.total, progress.queued, progress.graded, progress.done, progress.percent) == (4, 4, 0, 0, 0)
    assert progress.ahead == 2 and progress.essays_per_minute == 2.0
    assert progress.eta_seconds == 180  # (4 mine + 2 ahead) / 2 a minute
    seen = []
    for k, essay_id in enumerate(mine.essay_ids, start=1):
        _set(sessions, [essay_id], EssayStatus.graded, start, start + timedelta(seconds=90 + 30 * k))
        with sessions() as session:
            step = assignment_progress(session, mine.assignment_id, now=NOW)
        seen.append((step.graded, step.percent, step.finished))
    assert seen == [(1, 25, False), (2, 50, False), (3, 75, False), (4, 100, True)]
    with sessions() as session:
        done = assignment_progress(session, mine.assignment_id, now=NOW)
    assert done.eta_seconds == 0 and done.ahead == 0
