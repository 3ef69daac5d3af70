"""Chat conversations idle since before the retention cutoff are purged with their turns; recent ones stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import ChatSession, ChatTurn, Classroom, School, TurnStatus, transaction
from shared.models.base import utcnow
from shared.retention import purge_expired, retention_cutoff
from tests.factories.builders import add_classroom, add_school, add_student, add_user


def test_idle_conversations_go_with_their_turns(db_sessions: sessionmaker[Session]) -> None:
    tag = uuid.uuid4().hex[:8]
    now = utcnow()
    with transaction(db_sessions) as session:
        school = add_school(session, f"保留中学-{tag}")
        teacher = add_user(session, f"keep-{tag}", "吴老师", school_id=school.id)
        classroom = add_classroom(session, school.id, teacher.id, f"高一-{tag}")
        student = add_student(session, classroom.id, "张三", "01")
        old = ChatSession(student_id=student.id, created_at=now - timedelta(days=400),
                          last_active_at=now - timedelta(days=400))
        recent = ChatSession(student_id=student.id, created_at=now - timedelta(days=400), last_active_at=now)
        session.add_all([old, recent])
        session.flush()
        for chat, count in ((old, 3), (recent, 2)):
            session.add_all(ChatTurn(session_id=chat.id, student_id=student.id, classroom_id=classroom.id,
                                     question=f"问题{i}", answer="回答", status=TurnStatus.done, topic="其他",
                                     sources=[], new_tokens=2) for i in range(count))
        ids = (school.id, classroom.id, old.id, recent.id)
    with transaction(db_sessions) as session:
        purged = purge_expired(session, retention_cutoff(365, now))
    assert purged.counts["chat_sessions"] == 1 and purged.counts["chat_turns"] == 3
    with db_sessions() as session:
        assert session.scalars(select(ChatSession.id).where(ChatSession.id.in_(ids[2:]))).all() == [ids[3]]
        assert len(session.scalars(select(ChatTurn.id).where(ChatTurn.classroom_id == ids[1])).all()) == 2
    with transaction(db_sessions) as session:
        session.delete(session.get(Classroom, ids[1]))
        session.flush()
        session.delete(session.get(School, ids[0]))
