"""The stale-queue sweep re-sends essays stranded in `queued` (e.g. the broker was down at upload), only when the
gpu queue is empty, and never essays that are recent or already graded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from services.worker.celery_app import make_celery
from services.worker.maintenance import REQUEUE_TASK, STALE_AFTER, beat_schedule, run_requeue_stale
from shared.models import Essay, EssayStatus, make_engine, make_session_factory, transaction
from shared.models.base import utcnow
from shared.queueing import GRADE_TASK
from shared.settings import Settings
from tests.factories import make_class
from tests.web.conftest import TaskRecorder


def test_stranded_essays_are_sent_again_once_the_gpu_queue_is_empty(sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=sqlite_url, broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
                        data_dir=tmp_path)
    sessions = make_session_factory(make_engine(sqlite_url))
    fixture = make_class(sessions, ["作文甲" * 100, "作文乙" * 100, "作文丙" * 100, "作文丁" * 100], tag="stale")
    stranded, graded, recent, retried = fixture.essay_ids
    long_ago = utcnow() - STALE_AFTER - timedelta(minutes=5)
    with transaction(sessions) as session:
        session.execute(update(Essay).where(Essay.id.in_([stranded, graded])).values(created_at=long_ago))
        session.execute(update(Essay).where(Essay.id == graded).values(status=EssayStatus.graded))
        # Put back in the queue after a failed attempt long ago: its last claim is what counts.
        session.execute(update(Essay).where(Essay.id == retried).values(created_at=long_ago, claimed_at=long_ago))

    busy = make_celery(settings)
    busy.send_task(GRADE_TASK, args=[[999]])
    recorder = TaskRecorder()
    assert run_requeue_stale(recorder, sessions, settings) == 0, "workers still have queued work to reach"
    assert recorder.sent == []

    idle = Settings(database_url=sqlite_url, broker_url=f"sqla+sqlite:///{tmp_path / 'idle.sqlite'}",
                    data_dir=tmp_path)
    assert run_requeue_stale(recorder, sessions, idle) >= 1
    sent = sorted(essay for name, (batch,) in recorder.sent if name == GRADE_TASK for essay in batch)
    assert sent == sorted([stranded, retried]), "not the graded essay, not the one uploaded a minute ago"
    assert recent not in sent


def test_beat_runs_the_sweep_every_ten_minutes_with_an_expiry() -> None:
    entry = beat_schedule()["requeue-stale"]
    assert entry["task"] == REQUEUE_TASK and entry["schedule"] == STALE_AFTER.total_seconds()
    assert entry["options"]["expires"] == STALE_AFTER.total_seconds(), "a backlog of sweeps is never worked off"
