"""`yuejuan user create|password|token`: an unknown school is refused unless --create-school, the password policy
and case-insensitive usernames hold as on the web; tokens get an expiry; the 0005 migration backfills and refuses
existing case twins."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import select

from services.cli import main
from shared.models import School, User, make_engine
from shared.models.base import utcnow
from shared.models.migrate import upgrade
from shared.security import hash_api_token, verify_password

GOOD = "correct-horse\ncorrect-horse\n"


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("YUEJUAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("YUEJUAN_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    return runner


def _engine(tmp_path: Path) -> sa.Engine:
    return make_engine(f"sqlite:///{tmp_path / 'yuejuan.sqlite'}")


def test_an_unknown_school_is_refused_unless_asked_to_create_it(cli: CliRunner, tmp_path: Path) -> None:
    created = cli.invoke(main, ["user", "create", "--username", "wang", "--school", "第一中学", "--create-school"],
                         input=GOOD)
    assert created.exit_code == 0, created.output
    typo = cli.invoke(main, ["user", "create", "--username", "li", "--school", "第一种学"], input=GOOD)
    assert typo.exit_code != 0 and "没有名为“第一种学”的学校" in typo.output and "第一中学" in typo.output
    assert "--create-school" in typo.output
    same = cli.invoke(main, ["user", "create", "--username", "li", "--school", " 第一中学 "], input=GOOD)
    assert same.exit_code == 0, same.output
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        assert conn.execute(select(School.name)).scalars().all() == ["第一中学"]
        assert conn.execute(select(sa.func.count()).select_from(User)).scalar_one() == 2
    engine.dispose()


def test_weak_passwords_and_case_twins_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    base = ["user", "create", "--school", "一中", "--create-school", "--username"]
    weak = cli.invoke(main, [*base, "wang"], input="12345678\n12345678\n")
    assert weak.exit_code != 0 and "太常见" in weak.output
    named = cli.invoke(main, [*base, "wang"], input="wang-is-great\nwang-is-great\n")
    assert named.exit_code != 0 and "不能包含用户名" in named.output
    assert cli.invoke(main, [*base, "Wang"], input=GOOD).exit_code == 0
    for twin in ("wang", "WANG ", "ｗａｎｇ"):
        again = cli.invoke(main, [*base, twin], input=GOOD)
        assert again.exit_code != 0 and "已存在" in again.output, twin
    spaced = cli.invoke(main, [*base, "wang li"], input=GOOD)
    assert spaced.exit_code != 0 and "不能有空格" in spaced.output


def test_password_reset_and_token_expiry_from_the_cli(cli: CliRunner, tmp_path: Path) -> None:
    assert cli.invoke(main, ["user", "create", "--username", "Zhao", "--role", "sysadmin"], input=GOOD).exit_code == 0
    weak = cli.invoke(main, ["user", "password", "--username", "zhao"], input="password\npassword\n")
    assert weak.exit_code != 0 and "太常见" in weak.output
    reset = cli.invoke(main, ["user", "password", "--username", "ZHAO"], input="new-secret-2026\nnew-secret-2026\n")
    assert reset.exit_code == 0, reset.output
    token_run = cli.invoke(main, ["user", "token", "--username", "zhao", "--days", "7"])
    assert token_run.exit_code == 0 and "有效期至" in token_run.output
    token = token_run.output.strip().splitlines()[-1]
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        row = conn.execute(select(User.password_hash, User.session_version, User.api_token_hash,
                                  User.api_token_expires_at)).one()
    engine.dispose()
    assert verify_password(row.password_hash, "new-secret-2026") and row.session_version == 1
    assert row.api_token_hash == hash_api_token(token)
    expires = row.api_token_expires_at.replace(tzinfo=utcnow().tzinfo)
    assert timedelta(days=6, hours=23) < expires - utcnow() <= timedelta(days=7)


def _users_at_0004(url: str, names: list[str]) -> sa.Engine:
    upgrade(url, "0004")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schools (name, created_at) VALUES ('一中', CURRENT_TIMESTAMP)"))
        for index, name in enumerate(names):
            conn.execute(sa.text(
                "INSERT INTO users (school_id, username, display_name, role, password_hash, api_token_hash, "
                "is_active, created_at) VALUES (1, :name, :name, 'teacher', 'x', :token, 1, CURRENT_TIMESTAMP)"
            ), {"name": name, "token": f"hash-{index}"})
    return engine


def test_migration_0005_backfills_keys_and_token_expiry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    engine = _users_at_0004(url, ["Wang ", "li"])
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT username, username_key, session_version, api_token_expires_at "
                                    "FROM users ORDER BY id")).all()
    engine.dispose()
    assert [(r[0], r[1], r[2]) for r in rows] == [("Wang", "wang", 0), ("li", "li", 0)]
    assert all(r[3] is not None for r in rows)


def test_migration_0005_refuses_existing_case_twins_by_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    engine = _users_at_0004(url, ["Wang", "wang "])
    engine.dispose()
    with pytest.raises(RuntimeError, match="'Wang' 与 'wang ' 只差大小写或空格"):
        upgrade(url)
