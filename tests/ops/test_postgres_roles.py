"""deploy/postgres-roles.sql in a scratch database: the application role cannot rewrite or delete audit rows,
while everything the application does (accounts, grading data, erasure, retention) still works as that role.

The script is applied with psql exactly as the README and docker-compose.yml do, by the database's owner.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from shared import audit
from shared.erasure import erase
from shared.models import AuditLog, School, make_engine, make_session_factory, transaction
from shared.models.migrate import upgrade
from shared.retention import run_retention
from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database
from tests.factories import add_school, add_user
from tests.factories.people import build_people
from tests.processes import REPO_ROOT

ROLES_SQL = REPO_ROOT / "deploy" / "postgres-roles.sql"


@dataclass
class RoleSetup:
    owner_url: str
    app_url: str
    owner: str
    app: str


def _admin() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _as(url: str, user: str) -> str:
    return make_url(url).set(username=user, password=None).render_as_string(hide_password=False)


def _apply_roles_sql(owner_url: str, owner: str, app: str) -> subprocess.CompletedProcess[str]:
    url = make_url(owner_url)
    env = dict(os.environ, PGPASSWORD=url.password or "")
    cmd = [
        "psql", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", owner, "-d", str(url.database),
        "-v", "ON_ERROR_STOP=1", "-v", f"owner_role={owner}", "-v", f"app_role={app}",
        "-v", "app_password=app-password-for-tests", "-f", str(ROLES_SQL),
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture()
def roles() -> Iterator[RoleSetup]:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed: the roles script is applied with psql")
    suffix = uuid.uuid4().hex[:8]
    owner, app = f"yj_owner_{suffix}", f"yj_app_{suffix}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" LOGIN CREATEROLE'))
    url = create_pg_database("yuejuan_roles")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{make_url(url).database}" OWNER TO "{owner}"'))
    try:
        owner_url = _as(url, owner)
        upgrade(owner_url)
        yield RoleSetup(owner_url, _as(url, app), owner, app)
    finally:
        drop_pg_database(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{app}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{owner}"'))
        admin.dispose()


def test_the_app_role_appends_to_the_audit_log_but_cannot_change_it(roles: RoleSetup, tmp_path: Path) -> None:
    applied = _apply_roles_sql(roles.owner_url, roles.owner, roles.app)
    assert applied.returncode == 0, applied.stderr
    again = _apply_roles_sql(roles.owner_url, roles.owner, roles.app)
    assert again.returncode == 0, f"the script must be safe to run after every upgrade: {again.stderr}"

    engine = make_engine(roles.app_url)
    sessions = make_session_factory(engine)
    try:
        with transaction(sessions) as session:
            assert session.scalar(text("SELECT current_user")) == roles.app
            school = add_school(session, f"角色测试中学-{roles.app}")
            account = add_user(session, f"u-{roles.app}", "测试", school_id=school.id)
            row = audit.record(session, "user.create", actor="pytest", object_type="user", object_id=account.id)
        with sessions() as session:
            assert session.get(AuditLog, row.id) is not None, "INSERT and SELECT on audit_log work"

        for statement in (
            "UPDATE audit_log SET action = 'rewritten'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "UPDATE alembic_version SET version_num = 'x'",
            "CREATE TABLE smuggled (id int)",
        ):
            with engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied|must be owner"):
                conn.execute(text(statement))
        with sessions() as session:
            assert session.scalar(select(AuditLog.action).where(AuditLog.id == row.id)) == "user.create"

        # Everything the application does, as the application role: grading data, erasure, retention.
        people = build_people(sessions, tmp_path)
        assert erase(sessions, tmp_path, "school", people.school, actor="pytest") is not None
        assert run_retention(sessions, tmp_path, 1, actor="pytest") is not None
        with sessions() as session:
            assert session.scalar(select(School.id).where(School.id == people.school)) is None
    finally:
        engine.dispose()


def test_tables_added_by_later_migrations_are_usable_by_the_app_role(roles: RoleSetup) -> None:
    assert _apply_roles_sql(roles.owner_url, roles.owner, roles.app).returncode == 0
    owner = create_engine(roles.owner_url)
    with owner.begin() as conn:
        conn.execute(text("CREATE TABLE added_later (id serial PRIMARY KEY, note text)"))
    owner.dispose()
    app = create_engine(roles.app_url)
    try:
        with app.begin() as conn:
            conn.execute(text("INSERT INTO added_later (note) VALUES ('ok')"))
            assert conn.scalar(text("SELECT count(*) FROM added_later")) == 1
    finally:
        app.dispose()
