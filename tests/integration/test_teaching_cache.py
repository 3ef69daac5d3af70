"""The 立意 cache row on both databases (issue 20): one row per key, and a twin inserted by a concurrent request
between the lookup and the insert wins the unique key without failing the request."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.web.teaching_service import cached_row
from shared.models import JobStatus, TopicAnalysis, transaction


def _row(key: str) -> TopicAnalysis:
    return TopicAnalysis(cache_key=key, prompt_text="题", rubric_ref="gaokao-national", rubric_version="2024.1")


def test_a_concurrent_twin_wins_the_cache_key(db_sessions: sessionmaker[Session]) -> None:
    key = uuid.uuid4().hex
    with db_sessions() as session:
        row, needs_model = cached_row(session, TopicAnalysis, key, lambda: _row(key), 3600)
        session.commit()
        assert needs_model and row.status == JobStatus.queued and row.requested_at is not None
        again, needs_model = cached_row(session, TopicAnalysis, key, lambda: _row(key), 3600)
        assert again.id == row.id and not needs_model

    twin_key = uuid.uuid4().hex

    def insert_twin_first() -> TopicAnalysis:
        with transaction(db_sessions) as other:  # another request commits the same key meanwhile
            other.add(_row(twin_key))
        return _row(twin_key)

    with db_sessions() as session:
        session.execute(select(func.count(TopicAnalysis.id)))  # a transaction is open, as in a request
        twin, needs_model = cached_row(session, TopicAnalysis, twin_key, insert_twin_first, 3600)
        session.commit()
        assert twin is not None and not needs_model
    with db_sessions() as session:
        keys = session.scalars(select(TopicAnalysis.cache_key).where(TopicAnalysis.cache_key.in_([key, twin_key])))
        assert sorted(keys) == sorted([key, twin_key])
    with transaction(db_sessions) as session:
        for row in session.scalars(select(TopicAnalysis).where(TopicAnalysis.cache_key.in_([key, twin_key]))):
            session.delete(row)
