"""The sweep: takes back essays whose grading task is gone (lease ran out), and sends again queued essays that no
task in the broker holds, while other tasks still wait; never essays that are recent, held or graded."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker import store
from services.worker.maintenance import REQUEUE_TASK, beat_schedule, run_sweep
from shared.celery_app import make_celery
from shared.models import (
    ChatSession,
    ChatTurn,
    Essay,
    EssayStatus,
    JobStatus,
    TurnStatus,
    make_engine,
    make_session_factory,
    transaction,
)
from shared.models.base import utcnow
from shared.models.migrate import upgrade
from shared.queueing import GRADE_TASK, PRIORITY_STEPS, essays_in_broker, task_args_in_broker
from shared.settings import Settings
from shared.tasks import CHAT_QUEUE, CHAT_TASK, CLASS_WORKBOOK_TASK, GPU_QUEUE, REPORTS_QUEUE, ReportKind
from shared.upload_previews import PREVIEW_TTL_S
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import make_class, make_report_job
from tests.processes import PrivateRedis


def _statuses(sessions: sessionmaker[Session], ids: list[int]) -> dict[int, tuple[str, int]]:
    with sessions() as session:
        return {e.id: (e.status.value, e.attempts) for e in session.scalars(select(Essay).where(Essay.id.in_(ids)))}


def _sweep_scenario(sessions: sessionmaker[Session], settings: Settings, tag: str) -> None:
    """Shared by both brokers: seven essays in every state the sweep must tell apart."""
    texts = [f"作文{n}" * 100 for n in range(8)]
    fixture = make_class(sessions, texts, tag=tag)
    stranded, held, graded, recent, dead_a, dead_b, alive, dead_alone = fixture.essay_ids
    long_ago = utcnow() - timedelta(seconds=settings.stale_after_s + 60)
    with transaction(sessions) as session:
        session.execute(update(Essay).where(Essay.id.in_([stranded, held, graded])).values(created_at=long_ago))
        session.execute(update(Essay).where(Essay.id == graded).values(status=EssayStatus.graded))
    store.claim(sessions, [dead_a, dead_b], "dead-task", lease_s=settings.lease_s, is_retry=False)
    store.claim(sessions, [alive], "live-task", lease_s=settings.lease_s, is_retry=False)
    store.claim(sessions, [dead_alone], "dead-alone", lease_s=settings.lease_s, is_retry=False)
    celery = make_celery(settings)
    # Another class's work waits in the queue: the sweep must still run, and leave the essay it holds alone.
    celery.send_task(GRADE_TASK, args=[[held]], priority=5)
    # Report jobs: one whose task was never sent (the grading process died right after committing it), one
    # whose task waits, one finished, one just created.
    jobs = {name: make_report_job(sessions, ReportKind.class_workbook, school_id=fixture.school_id,
                                  assignment_id=fixture.assignment_id, status=status, created_at=long_ago)
            for name, status in (("lost", JobStatus.queued), ("waiting", JobStatus.queued), ("done", JobStatus.done))}
    jobs["new"] = make_report_job(sessions, ReportKind.class_workbook, school_id=fixture.school_id,
                                  assignment_id=fixture.assignment_id,
                                  created_at=utcnow() + timedelta(seconds=settings.lease_s))  # just before the sweep
    celery.send_task(CLASS_WORKBOOK_TASK, args=[jobs["waiting"]])
    # Chat turns: one whose task was never sent (the broker was away when the student asked), one whose task
    # waits, one answered, one just asked.
    with transaction(sessions) as session:
        chat = ChatSession(student_id=fixture.student_ids[0], last_active_at=long_ago)
        session.add(chat)
        session.flush()
        turns = {}
        for name, status, asked in (("lost", TurnStatus.queued, long_ago), ("waiting", TurnStatus.queued, long_ago),
                                    ("done", TurnStatus.done, long_ago),
                                    ("new", TurnStatus.queued, utcnow() + timedelta(seconds=settings.lease_s))):
            turn = ChatTurn(session_id=chat.id, student_id=fixture.student_ids[0], classroom_id=fixture.classroom_id,
                            question="怎样写好开头？", status=status, created_at=asked)
            session.add(turn)
            session.flush()
            turns[name] = turn.id
    celery.send_task(CHAT_TASK, args=[turns["waiting"]])
    later = utcnow() + timedelta(seconds=settings.lease_s + 1)
    store.renew_lease(sessions, "live-task", settings.lease_s * 10)
    with transaction(sessions) as session:  # uploaded a moment before the sweep runs
        session.execute(update(Essay).where(Essay.id == recent).values(created_at=later - timedelta(seconds=1)))

    # An upload preview (essay text, names) past its two hours, and one still pending.
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    expired, pending = uploads / f"expired{'x' * 35}.json", uploads / f"pending{'x' * 35}.json"
    for path in (expired, pending):
        path.write_text('{"items": [{"student_name": "甲同学", "text": "作文"}]}', encoding="utf-8")
    stamp = (later - timedelta(seconds=PREVIEW_TTL_S + 60)).timestamp()
    os.utime(expired, (stamp, stamp))

    counts = run_sweep(celery, sessions, settings, now=later)

    assert counts == {"recovered": 3, "resent": 1, "reports_resent": 1, "chat_resent": 1, "previews_expired": 1}
    assert not expired.exists() and pending.exists()
    in_broker = essays_in_broker(settings.resolved_broker_url(), GPU_QUEUE, delivered_within_s=60)
    assert {stranded, held, dead_a, dead_b, dead_alone} <= in_broker
    assert not {graded, recent, alive} & in_broker
    assert _statuses(sessions, fixture.essay_ids) == {
        stranded: ("queued", 0), held: ("queued", 0), graded: ("graded", 0), recent: ("queued", 0),
        dead_a: ("queued", 0), dead_b: ("queued", 0), alive: ("grading", 0), dead_alone: ("queued", 1),
    }, "a dead batch is not charged; an essay that was alone is"
    sent_reports = task_args_in_broker(settings.resolved_broker_url(), REPORTS_QUEUE, {CLASS_WORKBOOK_TASK},
                                       delivered_within_s=60)
    assert sorted(args[0] for args in sent_reports) == sorted([jobs["lost"], jobs["waiting"]])
    sent_turns = task_args_in_broker(settings.resolved_broker_url(), CHAT_QUEUE, {CHAT_TASK}, delivered_within_s=60)
    assert sorted(args[0] for args in sent_turns) == sorted([turns["lost"], turns["waiting"]])
    # A second sweep finds everything held by a task: nothing is sent twice.
    assert run_sweep(celery, sessions, settings, now=later) == {"recovered": 0, "resent": 0, "reports_resent": 0,
                                                                "chat_resent": 0, "previews_expired": 0}


def test_sweep_on_the_embedded_broker(sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=sqlite_url, broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
                        data_dir=tmp_path)
    _sweep_scenario(make_session_factory(make_engine(sqlite_url)), settings, "sweep-sqlite")


def test_sweep_on_redis_with_postgresql(private_redis: PrivateRedis, tmp_path: Path) -> None:
    # A database and a broker of its own: the sweep looks at every essay and every message there is.
    url = create_pg_database("yuejuan_sweep")
    engine = make_engine(url)
    try:
        upgrade(url)
        settings = Settings(database_url=url, broker_url=private_redis.url, data_dir=tmp_path)
        _sweep_scenario(make_session_factory(engine), settings, "sweep-pg")
    finally:
        engine.dispose()
        drop_pg_database(url)


def test_a_delivered_unacknowledged_redis_task_holds_its_essays_until_it_is_old(private_redis: PrivateRedis) -> None:
    """A worker that took a task and died leaves it unacknowledged; Redis hands it back only after the visibility
    timeout (hours). Delivered a moment ago it holds its essays; delivered long ago, not any more."""
    import redis
    from kombu import Connection

    url = private_redis.url
    make_celery(Settings(broker_url=url)).send_task(GRADE_TASK, args=[[4242]], priority=3)
    with Connection(url, transport_options={"priority_steps": PRIORITY_STEPS}) as connection:
        message = connection.default_channel.basic_get(GPU_QUEUE, no_ack=False)
        assert message is not None and message.decode()[0][0] == [4242]
        assert essays_in_broker(url, GPU_QUEUE, delivered_within_s=60) == {4242}, "delivered, not acknowledged"
        client = redis.Redis.from_url(url)
        client.zadd("unacked_index", {message.delivery_tag: client.zscore("unacked_index", message.delivery_tag) - 120})
        assert essays_in_broker(url, GPU_QUEUE, delivered_within_s=60) == set(), "delivered two minutes ago"
        message.ack()
    assert essays_in_broker(url, GPU_QUEUE, delivered_within_s=600) == set()


@pytest.mark.parametrize("every", [15, 42])
def test_beat_sends_the_sweep_at_the_configured_interval_with_an_expiry(every: int) -> None:
    entry = beat_schedule(Settings(sweep_interval_s=every))["requeue-stale"]
    assert entry["task"] == REQUEUE_TASK and entry["schedule"] == every
    assert entry["options"]["expires"] == every, "a backlog of sweeps is never worked off"
