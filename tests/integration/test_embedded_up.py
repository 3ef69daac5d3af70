"""`yuejuan up` with no PostgreSQL or Redis configured grades a class end to end and stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.celery_app import make_celery
from shared.models import Essay, EssayStatus, JobStatus, ReportJob, make_engine, make_session_factory
from shared.queueing import enqueue_assignment
from shared.settings import Settings
from tests.essays import make_essays
from tests.factories import make_class
from tests.processes import ManagedProcess, free_port, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.processes]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_grades_a_class_with_sqlite_and_the_embedded_broker(tiny_model_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = worker_env(data_dir=str(data_dir), web_port=str(port), model=str(tiny_model_dir))
    up = ManagedProcess([sys.executable, "-m", "services.cli", "up"], env, tmp_path / "up.log").start()
    assert up.proc is not None
    try:
        wait_for(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), timeout=180, what="the embedded web app")
        assert "阅卷已启动" in up.log() and str(data_dir.resolve()) in up.log()
        settings = Settings(data_dir=data_dir)
        assert settings.resolved_database_url().startswith("sqlite") and settings.uses_embedded_broker()
        sessions = make_session_factory(make_engine(settings.resolved_database_url()))
        fixture = make_class(sessions, make_essays(6, seed=9), tag=uuid.uuid4().hex[:6])
        with sessions() as session:
            assert enqueue_assignment(session, make_celery(settings), fixture.assignment_id, 16384) >= 1

        def statuses() -> list[EssayStatus]:
            with sessions() as session:
                return list(session.scalars(select(Essay.status).where(Essay.id.in_(fixture.essay_ids))))

        wait_for(lambda: statuses() == [EssayStatus.graded] * 6, timeout=600, what="6 essays graded")

        def report_done() -> bool:
            with sessions() as session:
                job = session.scalar(select(ReportJob).where(ReportJob.assignment_id == fixture.assignment_id))
                return job is not None and job.status == JobStatus.done and Path(job.file_path or "").exists()

        wait_for(report_done, timeout=300, what="the class workbook built by the reports worker")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{up.log()[-6000:]}") from None
    finally:
        # Ctrl-C in a terminal signals the whole foreground process group.
        up.signal_group(signal.SIGINT)
        code = up.proc.wait(timeout=120)
    assert code == 0, up.log()[-4000:]
    wait_for(lambda: not _group_alive(up.proc.pid), timeout=60, what="every child of `up` to exit")
    assert "已停止" in up.log()


def test_up_after_ctrl_c_mid_batch_grades_every_essay_once_and_regrades_twice(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Ctrl-C while a batch is being graded, start again: nothing stays 评分中 (the lease runs out and the sweep
    takes the batch back, or the stopping task released it), every essay has exactly one grade; then the same
    essays regraded twice get versions 2 and 3 (SQLite once reused a version number here)."""
    from services.web.actor import Actor
    from services.web.review import requeue
    from shared.models import transaction
    from tests.faults import GATE_DIR_ENV, GATE_MARK
    from tests.grading_run import enqueue_class, grades_per_essay, status_counts

    data_dir, gate = tmp_path / "data", tmp_path / "gate"
    gate.mkdir()
    port = free_port()
    env = worker_env(data_dir=str(data_dir), web_port=str(port), model=str(tiny_model_dir),
                     engine_class="tests.faults:GateEngine", lease_s="6", sweep_interval_s="2", stale_after_s="3")
    env[GATE_DIR_ENV] = str(gate)
    settings = Settings(data_dir=data_dir)

    def start(name: str) -> ManagedProcess:
        up = ManagedProcess([sys.executable, "-m", "services.cli", "up"], env, tmp_path / f"{name}.log").start()
        wait_for(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), timeout=180, what="the embedded web app")
        return up

    def ctrl_c(up: ManagedProcess) -> None:
        assert up.proc is not None
        up.signal_group(signal.SIGINT)
        assert up.proc.wait(timeout=240) is not None
        wait_for(lambda: not _group_alive(up.proc.pid), timeout=60, what="every child of `up` to exit")

    first = start("up1")
    sessions = make_session_factory(make_engine(settings.resolved_database_url()))
    essays = make_essays(5, seed=31)
    essays[2] = essays[2].replace("\n", f"\n{GATE_MARK}", 1)
    fixture = make_class(sessions, essays, tag=uuid.uuid4().hex[:6])
    ids, assignment_id = fixture.essay_ids, fixture.assignment_id
    try:
        enqueue_class(settings, sessions, assignment_id)
        wait_for(lambda: (gate / "entered").exists(), timeout=300, what="a batch to be held at the gate")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{first.log()[-6000:]}") from None
    finally:
        ctrl_c(first)
    (gate / "open").touch()
    second = start("up2")
    try:
        wait_for(lambda: status_counts(sessions, assignment_id) == {"graded": 5}, timeout=600,
                 what="all 5 essays graded after the restart")
        assert grades_per_essay(sessions, ids) == {i: 1 for i in ids}
        for version in (2, 3):
            with transaction(sessions) as session:
                assert len(requeue(session, Actor("测试教师", None, None), ids, assignment_id=assignment_id)) == 5
            enqueue_class(settings, sessions, assignment_id)
            wait_for(lambda: status_counts(sessions, assignment_id) == {"graded": 5}, timeout=600,
                     what=f"regrade {version - 1} of 5 essays")
            assert grades_per_essay(sessions, ids) == {i: version for i in ids}
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{status_counts(sessions, assignment_id)}\n{second.log()[-6000:]}") from None
    finally:
        ctrl_c(second)
    with sessions() as session:
        assert {e.attempts for e in session.scalars(select(Essay).where(Essay.id.in_(ids)))} == {0}
