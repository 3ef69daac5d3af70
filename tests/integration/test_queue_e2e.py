"""The queue end to end with real worker processes, real Redis and PostgreSQL, and the tiny model.

Each scenario runs once (they are the slow tests): SIGKILL mid-run, broker restart and cut database
connections, a poison essay, a model that cannot load, and the same assignment enqueued twice.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Essay, EssayStatus, Grade, WorkerStatus
from shared.settings import Settings
from tests.conftest import PG_ADMIN_URL
from tests.essays import make_essays
from tests.factories import make_class
from tests.faults import POISON_MARK
from tests.grading_run import enqueue_class, grades_per_essay, status_counts
from tests.processes import PrivateRedis, wait_for, worker_env, worker_process

pytestmark = [pytest.mark.slow, pytest.mark.processes]

TIME_LIMIT_S = 40
VISIBILITY_S = 50


def _env(pg_url: str, broker_url: str, model_dir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    return worker_env(
        database_url=pg_url, broker_url=broker_url, model=str(model_dir), data_dir=str(data_dir),
        task_time_limit_s=str(TIME_LIMIT_S), broker_visibility_timeout_s=str(VISIBILITY_S), **extra,
    )


def test_sigkill_mid_run_then_a_new_worker_grades_every_essay_exactly_once(
    pg_url: str, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    fixture = make_class(pg_sessions, make_essays(200, seed=1), tag=uuid.uuid4().hex[:6])
    # Enqueued twice: the claims must still give exactly one grade per essay.
    broker = Settings(database_url=pg_url, broker_url=private_redis.url)
    assert enqueue_class(broker, pg_sessions, fixture.assignment_id) > 1
    enqueue_class(broker, pg_sessions, fixture.assignment_id)
    env = _env(pg_url, private_redis.url, tiny_model_dir, tmp_path)
    first = worker_process(env, tmp_path / "worker1.log").start()
    try:
        wait_for(lambda: status_counts(pg_sessions, fixture.assignment_id).get("graded", 0) >= 20,
                 timeout=600, what="the first worker to grade 20 essays")
    except AssertionError:
        raise AssertionError(first.log()[-5000:]) from None
    first.kill()
    mid = status_counts(pg_sessions, fixture.assignment_id)
    assert mid.get("graded", 0) < 200, "the kill must land mid-run"
    second = worker_process(env, tmp_path / "worker2.log").start()
    try:
        wait_for(lambda: status_counts(pg_sessions, fixture.assignment_id) == {"graded": 200},
                 timeout=900, what="all 200 essays graded after the restart")
    except AssertionError:
        raise AssertionError(f"{status_counts(pg_sessions, fixture.assignment_id)}\n{second.log()[-5000:]}") from None
    finally:
        second.stop()
    assert grades_per_essay(pg_sessions, fixture.essay_ids) == {i: 1 for i in fixture.essay_ids}


def _cut_database_connections(pg_url: str) -> int:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        cut = conn.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                 "WHERE datname = :db AND pid <> pg_backend_pid()"),
            {"db": make_url(pg_url).database},
        ).scalar_one()
    admin.dispose()
    return int(cut)


def test_broker_restart_and_cut_database_connections_mid_run(
    pg_url: str, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    fixture = make_class(pg_sessions, make_essays(60, seed=2), tag=uuid.uuid4().hex[:6])
    enqueue_class(Settings(database_url=pg_url, broker_url=private_redis.url), pg_sessions, fixture.assignment_id)
    worker = worker_process(_env(pg_url, private_redis.url, tiny_model_dir, tmp_path), tmp_path / "w.log").start()
    try:
        wait_for(lambda: status_counts(pg_sessions, fixture.assignment_id).get("graded", 0) >= 8,
                 timeout=600, what="grading to start")
        private_redis.stop()
        private_redis.start()
        graded_after_redis = status_counts(pg_sessions, fixture.assignment_id).get("graded", 0)
        wait_for(lambda: status_counts(pg_sessions, fixture.assignment_id).get("graded", 0) > graded_after_redis,
                 timeout=600, what="grading to go on after the Redis restart")
        assert _cut_database_connections(pg_url) >= 1
        wait_for(lambda: status_counts(pg_sessions, fixture.assignment_id) == {"graded": 60},
                 timeout=900, what="all 60 essays graded")
    except AssertionError as exc:
        counts = status_counts(pg_sessions, fixture.assignment_id)
        raise AssertionError(f"{exc}\n{counts}\n{worker.log()[-6000:]}") from None
    finally:
        worker.stop()
    assert grades_per_essay(pg_sessions, fixture.essay_ids) == {i: 1 for i in fixture.essay_ids}


def test_a_poison_essay_fails_after_the_attempt_limit_and_its_batch_mates_are_graded(
    pg_url: str, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    essays = make_essays(8, seed=3)
    essays[3] = essays[3].replace("\n", f"\n{POISON_MARK}", 1)
    fixture = make_class(pg_sessions, essays, tag=uuid.uuid4().hex[:6])
    poison_id = fixture.essay_ids[3]
    enqueue_class(Settings(database_url=pg_url, broker_url=private_redis.url), pg_sessions, fixture.assignment_id)
    env = _env(pg_url, private_redis.url, tiny_model_dir, tmp_path, max_grading_attempts="2",
               engine_class="tests.faults:PoisonEngine")
    worker = worker_process(env, tmp_path / "w.log").start()
    try:
        wait_for(lambda: status_counts(pg_sessions, fixture.assignment_id) == {"graded": 7, "failed": 1},
                 timeout=600, what="7 graded and the poison essay failed")
    except AssertionError as exc:
        counts = status_counts(pg_sessions, fixture.assignment_id)
        raise AssertionError(f"{exc}\n{counts}\n{worker.log()[-6000:]}") from None
    finally:
        worker.stop()
    with pg_sessions() as session:
        poison = session.get(Essay, poison_id)
        assert poison.status == EssayStatus.failed
        assert poison.attempts == 2
        assert "injected generation failure" in poison.failure_reason
        assert session.scalar(select(func.count()).select_from(Grade).where(Grade.essay_id == poison_id)) == 0


def test_a_worker_whose_model_cannot_load_says_so_and_leaves_essays_queued(
    pg_url: str, pg_sessions: sessionmaker[Session], private_redis: PrivateRedis, tmp_path: Path,
) -> None:
    fixture = make_class(pg_sessions, make_essays(3, seed=4), tag=uuid.uuid4().hex[:6])
    enqueue_class(Settings(database_url=pg_url, broker_url=private_redis.url), pg_sessions, fixture.assignment_id)
    # model_retry_s=0: stop rather than try again (tests/ops/test_up.py follows the retrying default).
    env = _env(pg_url, private_redis.url, tmp_path / "no-such-model", tmp_path, model_retry_s="0")
    env["HF_HUB_OFFLINE"] = "1"
    worker = worker_process(env, tmp_path / "w.log").start()
    wait_for(lambda: not worker.running, timeout=180, what="the worker to stop after the load failure")
    assert worker.proc is not None and worker.proc.returncode != 0
    assert "MODEL COULD NOT BE LOADED" in worker.log()
    with pg_sessions() as session:
        states = session.scalars(select(WorkerStatus.state).where(WorkerStatus.detail.like("%模型无法加载%"))).all()
    assert "failed" in states
    assert status_counts(pg_sessions, fixture.assignment_id) == {"queued": 3}
