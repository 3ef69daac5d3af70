"""`yuejuan user token`: prints a new token once and stores only its hash."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from services.cli import main
from shared.models import AuditLog, User, make_engine
from shared.security import hash_api_token


def test_user_token_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("YUEJUAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("YUEJUAN_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(main, ["user", "create", "--username", "wang", "--school", "一中", "--create-school"],
                            input="correct-horse\ncorrect-horse\n")
    assert created.exit_code == 0, created.output
    result = runner.invoke(main, ["user", "token", "--username", "wang"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("yj_")
    missing = runner.invoke(main, ["user", "token", "--username", "nobody"])
    assert missing.exit_code != 0 and "没有这个用户" in missing.output
    engine = make_engine(f"sqlite:///{tmp_path / 'yuejuan.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(select(User.api_token_hash).where(User.username == "wang")).scalar_one() == \
            hash_api_token(token)
        assert "user.api_token" in conn.execute(select(AuditLog.action)).scalars().all()
    engine.dispose()
