"""The data directory and what is written in it are private to the service's user: directories 0700, files 0600
(the SQLite database, upload previews, workbooks), whatever umask the service was started with."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from services.web.app import create_app
from services.web.ingest import EssayPreview, PreviewItem
from services.web.state import app_state
from services.web.upload_store import save_preview
from shared.models import make_engine
from shared.settings import Settings
from shared.storage import reports_dir, uploads_dir
from tests.processes import REPO_ROOT, worker_env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def loose_umask() -> Iterator[None]:
    """The usual login umask (files 0644): the service must not rely on the caller's."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("loose_umask")
def test_web_app_data_dir_database_previews_and_workbooks_are_private(tmp_path: Path) -> None:
    from services.worker.reports.excel import save_atomically

    data_dir = tmp_path / "fresh" / "data"
    app = create_app(Settings(data_dir=data_dir, broker_url="redis://127.0.0.1:6379/13", secret_key="modes-secret"))
    try:
        with app_state(app).sessions() as session:
            session.connection()  # SQLite creates the file on the first connection
        assert _mode(data_dir) == 0o700
        database = data_dir / "yuejuan.sqlite"
        assert database.exists() and _mode(database) == 0o600
        item = PreviewItem(source="甲.txt", student_id=1, student_name="甲", title="题", text="正文", char_count=2)
        stored = save_preview(data_dir, EssayPreview(items=[item]), user_id=1, assignment_id=1, filenames=["甲.txt"])
        assert _mode(uploads_dir(data_dir)) == 0o700
        assert _mode(uploads_dir(data_dir) / f"{stored.token}.json") == 0o600
        workbook = save_atomically(Workbook(), reports_dir(data_dir) / "class-1.xlsx")
        assert _mode(reports_dir(data_dir)) == 0o700 and _mode(workbook) == 0o600
    finally:
        app_state(app).engine.dispose()


@pytest.mark.usefixtures("loose_umask")
def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite"
    database.touch()
    database.chmod(0o644)
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect():
        pass
    engine.dispose()
    assert _mode(database) == 0o600


def test_the_cli_creates_a_private_data_dir_and_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli" / "data"
    env = worker_env(data_dir=str(data_dir))
    result = subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr[-2000:]
    assert _mode(data_dir) == 0o700
    for path in data_dir.iterdir():
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert (data_dir / "yuejuan.sqlite").exists()
