"""`yuejuan up` on a machine with no model yet: the web app serves, administrators see a banner telling how to provide
one, the essays wait in the queue, and once the weights are copied in the grading worker loads them and grades.

Embedded mode as a newcomer runs it: SQLite database and SQLite broker in the data directory, all four processes.
"""

from __future__ import annotations

import http.cookiejar
import re
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Essay, EssayStatus, Role, WorkerStatus, make_engine, make_session_factory, transaction
from shared.security import hash_password
from shared.settings import Settings
from tests.essays import make_essays
from tests.factories import add_user, make_class
from tests.grading_run import enqueue_class, status_counts
from tests.processes import ManagedProcess, free_port, wait_for, worker_env

pytestmark = [pytest.mark.processes, pytest.mark.slow]

PASSWORD = "up-test-password-1"
BANNER = "评分模型无法加载，作文会在队列中等待"


class Browser:
    """Cookies and the CSRF token, over plain HTTP: enough to sign in and read pages."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode("utf-8")

    def sign_in(self, username: str, password: str) -> str:
        page = self.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:500]
        data = urllib.parse.urlencode({"csrf_token": token.group(1), "username": username, "password": password})
        with self.opener.open(self.base + "/login", data=data.encode(), timeout=10) as response:
            return response.read().decode("utf-8")


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _grading_row(sessions: sessionmaker[Session]) -> WorkerStatus | None:
    with sessions() as session:
        return session.scalars(select(WorkerStatus).where(WorkerStatus.queues.contains("gpu"))).first()


def test_up_without_a_model_serves_the_web_warns_admins_and_grades_once_the_model_arrives(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data_dir, model_dir = tmp_path / "data", tmp_path / "model"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = worker_env(data_dir=str(data_dir), model=str(model_dir), model_retry_s="1", web_port=str(port),
                     secret_key="up-test-secret-key", worker_heartbeat_s="1", device="cpu")
    env["HF_HUB_OFFLINE"] = "1"
    up = ManagedProcess([sys.executable, "-m", "services.cli", "up"], env, tmp_path / "up.log").start()
    try:
        wait_for(lambda: _answers(base), timeout=120, what="the web app of `yuejuan up`")
        settings = Settings(data_dir=data_dir)
        sessions = make_session_factory(make_engine(settings.resolved_database_url()))
        tag = uuid.uuid4().hex[:6]
        fixture = make_class(sessions, make_essays(2, seed=9), tag=tag)
        with transaction(sessions) as session:
            add_user(session, f"admin-{tag}", "管理员", role=Role.school_admin, school_id=fixture.school_id,
                     password_hash=hash_password(PASSWORD))
            add_user(session, f"teacher2-{tag}", "李老师", school_id=fixture.school_id,
                     password_hash=hash_password(PASSWORD))
        enqueue_class(settings, sessions, fixture.assignment_id)

        def failing() -> bool:
            row = _grading_row(sessions)
            return row is not None and row.state == "failed" and "第 2 次尝试" in (row.detail or "")

        wait_for(failing, timeout=120, what="the grading worker to report a second failed load")
        assert up.running, "`yuejuan up` stopped when the model could not be loaded"
        assert status_counts(sessions, fixture.assignment_id) == {"queued": 2}

        admin = Browser(base)
        home = admin.sign_in(f"admin-{tag}", PASSWORD)
        assert BANNER in home and 'id="model-banner"' in home
        assert "YUEJUAN_MODEL" in home and "找不到模型" in home and str(model_dir) in home
        teacher = Browser(base)
        assert BANNER not in teacher.sign_in(f"teacher2-{tag}", PASSWORD)  # teachers get the progress page's line

        # The weights arrive (copied next to it, then renamed: a directory appears whole).
        shutil.copytree(tiny_model_dir, tmp_path / "model.partial")
        (tmp_path / "model.partial").rename(model_dir)
        wait_for(lambda: status_counts(sessions, fixture.assignment_id) == {"graded": 2}, timeout=300,
                 what="both essays graded once the model could be loaded")
        row = _grading_row(sessions)
        assert row is not None and row.state == "ready" and row.model == str(model_dir)
        assert BANNER not in admin.get("/classes")
        with sessions() as session:
            assert set(session.scalars(select(Essay.status).where(Essay.id.in_(fixture.essay_ids)))) == {
                EssayStatus.graded}
    except BaseException:
        print("---- yuejuan up ----\n", up.log()[-8000:])
        raise
    finally:
        if up.proc is not None and up.proc.poll() is None:
            up.proc.send_signal(signal.SIGTERM)  # `up` stops its children and exits
            try:
                up.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                up.kill()
    assert up.proc is not None and up.proc.returncode == 0, up.log()[-4000:]
