"""Engine and session factory shared by web, worker and migrations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from shared.file_modes import private_sqlite_file

# A grading worker checks out a connection three times per task in quick succession (claim, write, completion
# check); three extra round trips would cost more than its claim. Any longer pause (the model's run, an empty
# queue) still gets the check, and a cut found by a statement is a transient error the task retries.
WORKER_PING_AFTER_IDLE_S = 1.0


def make_engine(url: str, *, ping_after_idle_s: float = 0.0, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout so web and worker can share it.

    A server connection that sat unused in the pool for at least ``ping_after_idle_s`` (by default: any
    connection) is checked before it is handed out, and replaced if the server has gone away (restarted,
    connection cut).
    """
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Deleted rows are overwritten, not left in free pages: erasing a student must really erase.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine, ping_after_idle_s)
    return engine


def _ping_idle_connections(engine: Engine, idle_s: float) -> None:
    """``pool_pre_ping`` for connections idle at least ``idle_s``."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out a fresh one.
            raise DisconnectionError(f"connection idle for {time.monotonic() - idle_since:.0f} s is gone") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    with factory() as session, session.begin():
        yield session
