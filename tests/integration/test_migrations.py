"""The schema comes from Alembic: one head, no drift from the models, downgrade to base works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, inspect

from shared.models import Base, make_engine
from shared.models.migrate import alembic_config, downgrade, upgrade
from tests.conftest import create_pg_database, drop_pg_database


def _drift(url: str, metadata=Base.metadata) -> list:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    engine.dispose()
    return diff


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_no_drift_on_postgresql(pg_url: str) -> None:
    assert _drift(pg_url) == []


def test_no_drift_on_sqlite(sqlite_url: str) -> None:
    assert _drift(sqlite_url) == []


def test_drift_detected_when_a_column_has_no_migration(pg_url: str) -> None:
    table = Base.metadata.tables["essays"]
    extra = Column("unmigrated_column", Integer)
    table.append_column(extra)
    try:
        diff = _drift(pg_url)
    finally:
        table._columns.remove(extra)
    assert any(d[0] == "add_column" and d[3].name == "unmigrated_column" for d in diff)


def test_upgrade_downgrade_upgrade_on_postgresql() -> None:
    url = create_pg_database("yuejuan_migrate")
    try:
        upgrade(url)
        engine = make_engine(url)
        assert "essays" in inspect(engine).get_table_names()
        downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(url)
        assert "audit_log" in inspect(engine).get_table_names()
        engine.dispose()
    finally:
        drop_pg_database(url)


def test_upgrade_downgrade_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    upgrade(url)
    downgrade(url, "base")
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
