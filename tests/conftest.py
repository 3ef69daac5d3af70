"""Session fixtures: a fresh PostgreSQL database, a Redis db number, a tiny random Qwen2 model (and tiny models with
other tokenizers)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Classroom, School, make_engine, make_session_factory, transaction
from shared.models.migrate import upgrade
from shared.models.scratch import create_database, drop_database
from tests.processes import PrivateRedis

# Markers set from the fixtures a test uses (pyproject.toml lists them): `-m "not pg"` runs without PostgreSQL.
_NEEDS = {
    "pg": {"pg_url", "pg_engine", "pg_sessions", "schools"},
    "redis": {"redis_url", "private_redis"},
    "model": {"tiny_model_dir", "any_tiny_model_dir"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _NEEDS.items():
            if used & fixtures:
                item.add_marker(marker)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in callspec.params.values():
            item.add_marker("pg")


PG_ADMIN_URL = os.environ.get("YUEJUAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("YUEJUAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def create_pg_database(prefix: str) -> str:
    return create_database(PG_ADMIN_URL, prefix)


def drop_pg_database(url: str) -> None:
    drop_database(PG_ADMIN_URL, url)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session, dropped at the end."""
    url = create_pg_database("yuejuan_test")
    upgrade(url)
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def pg_sessions(pg_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(pg_engine)


@pytest.fixture()
def schools(pg_sessions: sessionmaker[Session]) -> Iterator[list[int]]:
    """School ids a test created on PostgreSQL; their data is deleted afterwards (classes first: teachers are
    RESTRICTed)."""
    created: list[int] = []
    yield created
    with transaction(pg_sessions) as session:
        for school_id in created:
            session.execute(delete(Classroom).where(Classroom.school_id == school_id))
            session.execute(delete(School).where(School.id == school_id))


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'yuejuan.sqlite'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_sessions(request: pytest.FixtureRequest) -> sessionmaker[Session]:
    """Sessions on both supported databases, migrated by Alembic."""
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        return make_session_factory(make_engine(url))
    return request.getfixturevalue("pg_sessions")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A dedicated Redis db number, flushed before and after the session."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.ping()
    client.flushdb()
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis server of the test's own (AOF on), for tests that restart or wipe the broker."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = PrivateRedis(redis_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen2 model saved with save_pretrained, built once per test session."""
    import torch

    from tests.tiny_model import TINY_MODEL_TEXTS, build_tiny_qwen2

    # Tiny matrices: threads only add contention on a small machine (the workers get OMP_NUM_THREADS=1).
    torch.set_num_threads(1)
    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"), TINY_MODEL_TEXTS)


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir: Path) -> Path:
    """``tiny_model_dir`` converted to a GGUF file (f32: the same weights) for the llama.cpp engine, once a session."""
    from services.worker.engine.gguf_convert import convert

    return convert(tiny_model_dir, tiny_model_dir.parent / "tiny-qwen2-f32.gguf", "f32")


# tests/tiny_model.py's TOKENIZER_KINDS (written out: importing it imports torch, which most tests never need).
TINY_TOKENIZER_KINDS = ("qwen", "small-byte-level", "byte-fallback")


@pytest.fixture(scope="session", params=TINY_TOKENIZER_KINDS)
def any_tiny_model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model for each tokenizer kind (``qwen`` is ``tiny_model_dir`` itself), each built once per
    session: tests that use it run once per tokenizer."""
    if request.param == "qwen":
        return request.getfixturevalue("tiny_model_dir")
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp(f"tiny-{request.param}"), request.param)
