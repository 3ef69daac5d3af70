"""Pooled PostgreSQL connections: a cut one is replaced unseen, except a worker's in quick reuse (not pinged)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from shared.models import make_engine
from shared.models.db import WORKER_PING_AFTER_IDLE_S


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT pg_backend_pid()"))


def _cut(admin: Engine, pid: int) -> None:
    with admin.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}) is True


def test_a_connection_cut_while_idle_is_replaced_at_checkout(pg_url: str, pg_engine: Engine) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _cut(pg_engine, first)
        assert _backend_pid(engine) != first  # no error reached the caller
    finally:
        engine.dispose()


def test_a_worker_connection_back_from_use_moments_ago_is_not_pinged(pg_url: str, pg_engine: Engine) -> None:
    assert WORKER_PING_AFTER_IDLE_S > 0
    engine = make_engine(pg_url, ping_after_idle_s=3600, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _cut(pg_engine, first)
        # Not pinged, so the statement finds the cut; the pool then replaces the connection.
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()
