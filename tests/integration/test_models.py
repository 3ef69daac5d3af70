"""Constraints that make grading idempotent and the audit log append-only, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared import audit
from shared.models import AuditLog, AuditLogIsAppendOnly, Grade, transaction
from tests.factories import add_grade, make_class


def test_one_grade_per_essay_and_version(db_sessions) -> None:  # type: ignore[no-untyped-def]
    fixture = make_class(db_sessions, ["一篇作文。"], tag=uuid.uuid4().hex[:6])
    essay_id = fixture.essay_ids[0]
    with transaction(db_sessions) as session:
        add_grade(session, essay_id, (15, 15, 15), version=1)
    with pytest.raises(IntegrityError), transaction(db_sessions) as session:
        add_grade(session, essay_id, (15, 15, 15), version=1)
    with transaction(db_sessions) as session:
        add_grade(session, essay_id, (15, 15, 15), version=2)
    with db_sessions() as session:
        assert session.scalars(select(Grade.version).where(Grade.essay_id == essay_id)).all() == [1, 2]


def test_audit_rows_cannot_be_updated_or_deleted(db_sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(db_sessions) as session:
        row = audit.record(session, "test.action", actor="pytest", object_type="essay", object_id=1, note="x")
    with pytest.raises(AuditLogIsAppendOnly), transaction(db_sessions) as session:
        loaded = session.get(AuditLog, row.id)
        loaded.action = "tampered"
    with pytest.raises(AuditLogIsAppendOnly), transaction(db_sessions) as session:
        session.delete(session.get(AuditLog, row.id))
    with db_sessions() as session:
        assert session.get(AuditLog, row.id).action == "test.action"
