"""Faults that blame no innocent essay and leave nothing stuck, with real worker processes on PostgreSQL + Redis.

Exact counts every time: each innocent essay graded once, only the marked essay failed, none left 评分中.
Each scenario runs once (slow): an essay that kills its worker process, a batch past its soft time limit,
a batch past its hard time limit recovered by the sweep (beat and a reports worker), and a class whose tasks
never reached the broker.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Essay, EssayStatus
from shared.settings import Settings
from tests.essays import make_essays
from tests.factories import make_class
from tests.faults import CRASH_MARK, HANG_MARK
from tests.grading_run import enqueue_class, grades_per_essay, status_counts
from tests.processes import ManagedProcess, PrivateRedis, wait_for, worker_env, worker_process

pytestmark = [pytest.mark.slow, pytest.mark.processes]


def _marked_class(sessions: sessionmaker[Session], count: int, mark: str, seed: int) -> tuple[list[int], int, int]:
    """A class of short essays (one batch) with the mark in one of them: (essay ids, marked id, assignment id)."""
    essays = make_essays(count, seed=seed)
    essays[count // 2] = essays[count // 2].replace("\n", f"\n{mark}", 1)
    fixture = make_class(sessions, essays, tag=uuid.uuid4().hex[:6])
    return fixture.essay_ids, fixture.essay_ids[count // 2], fixture.assignment_id


def _assert_only_the_marked_failed(sessions: sessionmaker[Session], ids: list[int], marked: int, *, reason: str,
                                   attempts: int) -> None:
    assert grades_per_essay(sessions, ids) == {i: (0 if i == marked else 1) for i in ids}
    with sessions() as session:
        essays = {e.id: e for e in session.scalars(select(Essay).where(Essay.id.in_(ids)))}
    assert essays[marked].status == EssayStatus.failed and reason in (essays[marked].failure_reason or "")
    assert essays[marked].attempts == attempts
    innocent = [e for i, e in essays.items() if i != marked]
    assert {e.status for e in innocent} == {EssayStatus.graded}
    assert {e.attempts for e in innocent} == {0}, "no innocent essay was charged an attempt"


@pytest.mark.parametrize(
    ("mark", "engine", "count", "extra", "reason"),
    [
        (CRASH_MARK, "CrashEngine", 6, {}, "进程崩溃或内存不足"),
        (HANG_MARK, "HangEngine", 4, {"task_time_limit_s": "20", "broker_visibility_timeout_s": "600"}, "超过时间限制"),
    ],
    ids=["an-essay-that-kills-its-worker", "a-batch-past-its-soft-time-limit"],
)
def test_a_faulty_essay_fails_alone_and_its_batch_mates_are_graded_once(
    pg_url: str, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, private_redis: PrivateRedis,
    tmp_path: Path, mark: str, engine: str, count: int, extra: dict[str, str], reason: str,
) -> None:
    """The batch goes back in halves (no charge) until the faulty essay stands alone and is charged to the limit."""
    ids, marked, assignment_id = _marked_class(pg_sessions, count, mark, seed=21)
    settings = Settings(database_url=pg_url, broker_url=private_redis.url)
    assert enqueue_class(settings, pg_sessions, assignment_id) == 1, "the whole class in one batch"
    env = worker_env(database_url=pg_url, broker_url=private_redis.url, model=str(tiny_model_dir),
                     data_dir=str(tmp_path), max_grading_attempts="2", engine_class=f"tests.faults:{engine}", **extra)
    worker = worker_process(env, tmp_path / "w.log").start()
    expected = {"graded": count - 1, "failed": 1}
    try:
        wait_for(lambda: status_counts(pg_sessions, assignment_id) == expected,
                 timeout=600, what=f"{count - 1} graded and the faulty essay failed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{status_counts(pg_sessions, assignment_id)}\n{worker.log()[-6000:]}") from None
    finally:
        worker.stop()
    _assert_only_the_marked_failed(pg_sessions, ids, marked, reason=reason, attempts=2)


def test_a_batch_killed_at_the_hard_time_limit_is_recovered_by_the_sweep(
    pg_url: str, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    """Celery acknowledges a task whose child it killed at the hard limit: nothing redelivers it. The lease runs
    out and the sweep (sent by a real beat, run by a real reports worker) takes the essays back."""
    ids, hanger, assignment_id = _marked_class(pg_sessions, 4, HANG_MARK, seed=23)
    settings = Settings(database_url=pg_url, broker_url=private_redis.url)
    enqueue_class(settings, pg_sessions, assignment_id)
    env = worker_env(database_url=pg_url, broker_url=private_redis.url, model=str(tiny_model_dir),
                     data_dir=str(tmp_path), max_grading_attempts="2", engine_class="tests.faults:HangEngine",
                     task_time_limit_s="20", broker_visibility_timeout_s="600", lease_s="6", sweep_interval_s="2",
                     stale_after_s="3")
    env["YUEJUAN_TEST_IGNORE_SOFT_LIMIT"] = "1"
    with _site(env, tmp_path) as processes:
        _wait_or_show(lambda: status_counts(pg_sessions, assignment_id) == {"graded": 3, "failed": 1},
                      "3 graded and the hanging essay failed", pg_sessions, assignment_id, processes)
    _assert_only_the_marked_failed(pg_sessions, ids, hanger, reason="中断", attempts=2)


def test_a_class_whose_tasks_never_reached_the_broker_is_graded_by_the_sweep(
    pg_url: str, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    """Confirmed while Redis was down (or its tasks lost with a wiped broker): the essays wait in `queued` with no
    task anywhere. The sweep, while another class's batches still wait in the queue, sends them again."""
    stranded = make_class(pg_sessions, make_essays(4, seed=24), tag=uuid.uuid4().hex[:6])
    waiting = make_class(pg_sessions, make_essays(4, seed=25), tag=uuid.uuid4().hex[:6])
    settings = Settings(database_url=pg_url, broker_url=private_redis.url)
    enqueue_class(settings, pg_sessions, waiting.assignment_id)  # the other class's tasks reach the broker
    env = worker_env(database_url=pg_url, broker_url=private_redis.url, model=str(tiny_model_dir),
                     data_dir=str(tmp_path), sweep_interval_s="2", stale_after_s="3")
    with _site(env, tmp_path) as processes:
        for fixture in (stranded, waiting):
            _wait_or_show(lambda f=fixture: status_counts(pg_sessions, f.assignment_id) == {"graded": 4},
                          "both classes graded", pg_sessions, fixture.assignment_id, processes)
    ids = stranded.essay_ids + waiting.essay_ids
    assert grades_per_essay(pg_sessions, ids) == {i: 1 for i in ids}


@contextmanager
def _site(env: dict[str, str], tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    """A grading worker, a reports worker (which runs the sweep) and beat (which sends it), stopped afterwards."""
    processes = [
        worker_process(env, tmp_path / "gpu.log").start(),
        worker_process(env, tmp_path / "reports.log", queues="reports").start(),
        ManagedProcess([sys.executable, "-m", "services.cli", "beat"], env, tmp_path / "beat.log").start(),
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def _wait_or_show(condition: Callable[[], bool], what: str, sessions: sessionmaker[Session], assignment_id: int,
                  processes: list[ManagedProcess]) -> None:
    try:
        wait_for(condition, timeout=900, what=what)
    except AssertionError as exc:
        logs = "\n".join(p.log()[-3000:] for p in processes)
        raise AssertionError(f"{exc}\n{status_counts(sessions, assignment_id)}\n{logs}") from None
