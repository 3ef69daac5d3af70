"""Worker status rows: periodic heartbeats from real worker processes, 失联 after a SIGKILL, clean stops, old rows
deleted, and status writes that never collide (the same id written by two processes at once)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from services.web import prometheus
from services.worker import runtime
from shared.celery_app import make_celery
from shared.models import Essay, EssayStatus, WorkerStatus, make_engine, transaction
from shared.models.base import utcnow
from shared.queueing import enqueue_assignment
from shared.settings import Settings
from shared.worker_health import FORGET_AFTER, aware, classify_workers
from tests.essays import make_essays
from tests.factories import make_class
from tests.faults import GATE_DIR_ENV, GATE_MARK
from tests.ops.conftest import AppFactory
from tests.ops.test_health_metrics import samples
from tests.processes import ManagedProcess, PrivateRedis, wait_for, worker_env

HEARTBEAT_S = 0.5
COLLISION_MARKERS = ("IntegrityError", "UniqueViolation", "could not record worker status")


class _Engine:
    def __init__(self, memory_mb: float) -> None:
        self.memory_mb = memory_mb

    def describe(self) -> dict[str, Any]:
        return {"model": "tiny-qwen", "device": "cuda", "memory_mb": self.memory_mb}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture()
def worker_ids(pg_sessions: sessionmaker[Session]) -> Iterator[list[str]]:
    """Status row ids a test writes on PostgreSQL; deleted afterwards."""
    ids: list[str] = []
    yield ids
    with transaction(pg_sessions) as session:
        session.execute(delete(WorkerStatus).where(WorkerStatus.id.in_(ids)))


def _configured(monkeypatch: pytest.MonkeyPatch, url: str, tmp_path: Path, worker_id: str, **settings: Any) -> None:
    monkeypatch.setattr(runtime, "_state", runtime._State())
    runtime.configure(Settings(database_url=url, data_dir=tmp_path, **settings), worker_id=worker_id,
                      queues=["gpu"], load_model=True)


def _row(sessions: sessionmaker[Session], worker_id: str) -> WorkerStatus | None:
    with sessions() as session:
        return session.get(WorkerStatus, worker_id)


# --- in-process: the writes themselves --------------------------------------------------------------------------


def test_status_and_beats_are_upserts_that_keep_the_recorded_state(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_sessions: sessionmaker[Session],
    worker_ids: list[str],
) -> None:
    worker_id = f"gpu-{uuid.uuid4().hex[:8]}@node"
    worker_ids.append(worker_id)
    _configured(monkeypatch, database_url, tmp_path, worker_id)
    sessions = runtime.sessions()
    try:
        runtime.record_status("loading")
        runtime.record_status("ready", model="tiny-qwen", device="cuda", memory_mb=100)
        runtime.record_status("ready")  # a second write of the same id: an update, model and device kept
        row = _row(sessions, worker_id)
        assert row is not None and (row.state, row.model, row.device, row.memory_mb) == ("ready", "tiny-qwen",
                                                                                         "cuda", 100)

        # A beat refreshes the time and the memory figure; it is written at most once per interval.
        runtime._state.engine = _Engine(2047.6)
        runtime._state.last_heartbeat -= runtime.settings().worker_heartbeat_s
        before = aware(row.updated_at)
        runtime.heartbeat()
        beaten = _row(sessions, worker_id)
        assert beaten is not None and beaten.memory_mb == 2048 and aware(beaten.updated_at) > before
        runtime._state.engine = _Engine(4096)
        runtime.heartbeat()
        assert _row(sessions, worker_id).memory_mb == 2048, "a beat moments later writes nothing"

        # A beat never overwrites a failure, and puts back a row that a clean-up deleted.
        runtime.record_status("failed", "模型无法加载: 没有这个目录")
        runtime._state.last_heartbeat -= runtime.settings().worker_heartbeat_s
        runtime.heartbeat()
        assert _row(sessions, worker_id).state == "failed"
        with transaction(sessions) as session:
            session.execute(delete(WorkerStatus).where(WorkerStatus.id == worker_id))
        runtime._state.last_heartbeat -= runtime.settings().worker_heartbeat_s
        runtime.heartbeat()
        back = _row(sessions, worker_id)
        assert back is not None and (back.state, back.queues, back.memory_mb) == ("failed", "gpu", 4096)
    finally:
        sessions.kw["bind"].dispose()


def test_a_status_write_racing_another_insert_of_the_same_id_does_not_fail(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    worker_ids: list[str],
) -> None:
    """The start-up collision, made deterministic: another process has inserted the row but not committed yet
    (two pool children of one worker starting together), so this write's INSERT waits on the primary key."""
    worker_id = f"reports-{uuid.uuid4().hex[:8]}@node"
    worker_ids.append(worker_id)
    _configured(monkeypatch, pg_url, tmp_path, worker_id)
    other = make_engine(pg_url)
    try:
        with other.connect() as conn:
            conn.execute(WorkerStatus.__table__.insert().values(id=worker_id, queues="reports", state="loading",
                                                                updated_at=utcnow()))
            writer = threading.Thread(target=runtime.record_status, args=("ready",))
            with caplog.at_level(logging.ERROR, logger=runtime.__name__):
                writer.start()
                wait_for(lambda: _waiting_on_a_lock(pg_url), timeout=30, what="the write to wait for the insert")
                conn.commit()
                writer.join(timeout=30)
        assert not writer.is_alive()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
        row = _row(runtime.sessions(), worker_id)
        assert row is not None and row.state == "ready"
    finally:
        other.dispose()
        runtime.sessions().kw["bind"].dispose()


def _waiting_on_a_lock(pg_url: str) -> bool:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock'"
            ), {"db": make_url(pg_url).database}).scalar_one()
        return bool(waiting)
    finally:
        engine.dispose()


# --- real worker processes ---------------------------------------------------------------------------------------


def _reports_worker(env: dict[str, str], log_path: Path, hostname: str) -> ManagedProcess:
    cmd = [sys.executable, "-m", "services.cli", "--log-level", "INFO", "worker", "--queues", "reports",
           "--hostname", hostname]
    return ManagedProcess(cmd, env, log_path)


def _beats(sessions: sessionmaker[Session], worker_id: str, seen: set[datetime], state: str = "ready") -> bool:
    """True once the row has shown ``state`` with three different timestamps (two beats after the first write)."""
    row = _row(sessions, worker_id)
    if row is not None and row.state == state:
        seen.add(aware(row.updated_at))
    return len(seen) >= 3


@pytest.mark.processes
def test_a_reports_worker_beats_turns_lost_after_sigkill_restarts_under_its_name_and_stops_cleanly(
    pg_url: str, pg_sessions: sessionmaker[Session], private_redis: PrivateRedis, make_ops_app: AppFactory,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_ids: list[str],
) -> None:
    tag = uuid.uuid4().hex[:8]
    hostname = f"yuejuan-reports-{tag}@pytest"
    ancient, recent = f"ancient-{tag}@gone", f"recent-{tag}@gone"
    worker_ids.extend([hostname, ancient, recent])
    with transaction(pg_sessions) as session:
        session.add_all([
            WorkerStatus(id=ancient, queues="gpu", state="ready", updated_at=utcnow() - FORGET_AFTER - timedelta(1)),
            WorkerStatus(id=recent, queues="gpu", state="ready", updated_at=utcnow() - timedelta(hours=1)),
        ])
    env = worker_env(database_url=pg_url, broker_url=private_redis.url, data_dir=str(tmp_path),
                     worker_heartbeat_s=str(HEARTBEAT_S))
    app = make_ops_app(broker_url=private_redis.url)
    ready_key = ("yuejuan_worker_ready", (("queues", "reports"), ("worker", hostname)))

    first = _reports_worker(env, tmp_path / "first.log", hostname).start()
    try:
        seen: set[datetime] = set()
        wait_for(lambda: _beats(pg_sessions, hostname, seen), timeout=120, what="the idle worker's row to beat")
        assert samples(app)[ready_key] == 1
    except AssertionError as exc:
        first.kill()
        raise AssertionError(f"{exc}\n{first.log()[-4000:]}") from None
    assert _row(pg_sessions, ancient) is None, "a row not written for a day is deleted at start"
    assert _row(pg_sessions, recent) is not None

    first.kill()  # SIGKILL to the parent and its pool children: nothing gets to say goodbye
    last = _row(pg_sessions, hostname)
    assert last is not None and last.state == "ready"
    moved = aware(last.updated_at) + timedelta(seconds=Settings().worker_lost_after_s + 1)
    [lost] = classify_workers([last], moved, lost_after_s=Settings().worker_lost_after_s)
    assert (lost.state_name, lost.live, lost.ready) == ("失联", False, False)
    monkeypatch.setattr(prometheus, "utcnow", lambda: moved)
    after = samples(app)
    assert after[ready_key] == 0
    assert after[("yuejuan_worker_info", (("device", ""), ("model", ""), ("queues", "reports"), ("state", "lost"),
                                         ("worker", hostname)))] == 1
    monkeypatch.undo()

    second = _reports_worker(env, tmp_path / "second.log", hostname).start()
    try:
        seen = set()
        wait_for(lambda: _beats(pg_sessions, hostname, seen), timeout=120, what="the restarted worker to beat")
    except AssertionError as exc:
        second.kill()
        raise AssertionError(f"{exc}\n{second.log()[-4000:]}") from None
    assert second.proc is not None
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(timeout=60) == 0, second.log()[-4000:]
    stopped = _row(pg_sessions, hostname)
    assert stopped is not None and stopped.state == "stopped"
    assert samples(app)[ready_key] == 0
    with pg_sessions() as session:
        assert session.scalar(select(WorkerStatus.id).where(WorkerStatus.id == hostname)) == hostname
    for log in (first.log(), second.log()):
        assert not [marker for marker in COLLISION_MARKERS if marker in log], log[-4000:]


@pytest.mark.slow
@pytest.mark.processes
def test_a_grading_worker_beats_while_a_long_batch_runs(
    pg_url: str, pg_sessions: sessionmaker[Session], private_redis: PrivateRedis, tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    fixture = make_class(pg_sessions, [make_essays(1, seed=7)[0].replace("\n", f"\n{GATE_MARK}", 1)],
                         tag=uuid.uuid4().hex[:6])
    celery = make_celery(Settings(database_url=pg_url, broker_url=private_redis.url))
    with pg_sessions() as session:
        enqueue_assignment(session, celery, fixture.assignment_id, token_budget=16384)
    hostname = f"yuejuan-gpu-{uuid.uuid4().hex[:8]}@pytest"
    env = worker_env(database_url=pg_url, broker_url=private_redis.url, data_dir=str(tmp_path),
                     model=str(tiny_model_dir), engine_class="tests.faults:GateEngine",
                     worker_heartbeat_s=str(HEARTBEAT_S), task_time_limit_s="600", broker_visibility_timeout_s="900",
                     lease_s="6")
    env[GATE_DIR_ENV] = str(gate)
    cmd = [sys.executable, "-m", "services.cli", "--log-level", "INFO", "worker", "--queues", "gpu",
           "--hostname", hostname]
    worker = ManagedProcess(cmd, env, tmp_path / "gpu.log").start()
    try:
        wait_for(lambda: (gate / "entered").exists(), timeout=300, what="the batch to reach the model")
        seen: set[datetime] = set()
        wait_for(lambda: _beats(pg_sessions, hostname, seen), timeout=60, what="beats during the batch")
        with pg_sessions() as session:
            held = session.get(Essay, fixture.essay_ids[0])
            assert held.status == EssayStatus.grading, "still mid-batch"
            first_lease = held.lease_until
        # The task renews its claim's lease while the model works, so no sweep takes a live batch back.
        wait_for(lambda: _lease(pg_sessions, fixture.essay_ids[0]) > first_lease, timeout=60,
                 what="the lease renewed during the batch")
        (gate / "open").touch()
        wait_for(lambda: _essay_status(pg_sessions, fixture.essay_ids[0]) == EssayStatus.graded, timeout=300,
                 what="the essay to be graded once the gate opens")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log()[-5000:]}") from None
    finally:
        worker.stop()
        with transaction(pg_sessions) as session:
            session.execute(delete(WorkerStatus).where(WorkerStatus.id == hostname))


def _lease(sessions: sessionmaker[Session], essay_id: int) -> datetime:
    with sessions() as session:
        return session.get(Essay, essay_id).lease_until


def _essay_status(sessions: sessionmaker[Session], essay_id: int) -> EssayStatus:
    with sessions() as session:
        return session.get(Essay, essay_id).status
