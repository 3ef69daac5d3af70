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

from services.worker.celery_app import make_celery
from shared.models import Essay, EssayStatus, JobStatus, ReportJob, make_engine, make_session_factory
from shared.queueing import enqueue_assignment
from shared.settings import Settings
from tests.essays import make_essays
from tests.factories import make_class
from tests.processes import ManagedProcess, free_port, wait_for, worker_env

pytestmark = pytest.mark.slow


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
