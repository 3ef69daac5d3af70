"""The `yuejuan` command: schema on a new PostgreSQL database and a new SQLite file, user creation."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, select

from services.cli import main
from shared.models import AuditLog, Role, User, make_engine
from shared.security import verify_password
from tests.conftest import create_pg_database, drop_pg_database


def test_db_upgrade_on_an_empty_postgresql_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = create_pg_database("yuejuan_cli")
    try:
        monkeypatch.setenv("YUEJUAN_DATABASE_URL", url)
        monkeypatch.setenv("YUEJUAN_DATA_DIR", str(tmp_path))
        result = CliRunner().invoke(main, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        engine = make_engine(url)
        assert {"essays", "grades", "audit_log"} <= set(inspect(engine).get_table_names())
        engine.dispose()
    finally:
        drop_pg_database(url)


def test_db_upgrade_creates_a_new_sqlite_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data_dir = tmp_path / "new-data"
    monkeypatch.delenv("YUEJUAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("YUEJUAN_DATA_DIR", str(data_dir))
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "yuejuan.sqlite").exists()


def test_user_create_hashes_the_password_and_audits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("YUEJUAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("YUEJUAN_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    args = ["user", "create", "--username", "wang", "--role", "teacher", "--school", "第一中学", "--create-school"]
    result = runner.invoke(main, args, input="correct-horse\ncorrect-horse\n")
    assert result.exit_code == 0, result.output
    again = runner.invoke(main, args, input="correct-horse\ncorrect-horse\n")
    assert again.exit_code != 0 and "已存在" in again.output
    no_school = runner.invoke(main, ["user", "create", "--username", "li"], input="correct-horse\ncorrect-horse\n")
    assert no_school.exit_code != 0 and "--school" in no_school.output
    engine = make_engine(f"sqlite:///{tmp_path / 'yuejuan.sqlite'}")
    with engine.connect() as conn:
        user = conn.execute(select(User.password_hash, User.role, User.school_id).where(User.username == "wang")).one()
        assert user.role == Role.teacher and user.school_id is not None
        assert user.password_hash != "correct-horse" and verify_password(user.password_hash, "correct-horse")
        assert conn.execute(select(AuditLog.action)).scalars().all() == ["school.create", "user.create"]
    engine.dispose()
