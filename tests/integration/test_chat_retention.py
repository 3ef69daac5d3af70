"""Chat conversations idle since before the retention cutoff are purged with their turns; recent ones stay. The class
workbook's 学生提问 sheet."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from pathlib import Path

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


def test_the_class_workbook_sheet_lists_what_the_class_asked(db_sessions: sessionmaker[Session],
                                                             tmp_path: Path) -> None:
    from openpyxl import Workbook, load_workbook

    from services.worker.reports.chat_sheet import CHAT_SHEET, add_chat_sheet

    tag = uuid.uuid4().hex[:8]
    with transaction(db_sessions) as session:
        school = add_school(session, f"表格中学-{tag}")
        teacher = add_user(session, f"sheet-{tag}", "郑老师", school_id=school.id)
        classroom = add_classroom(session, school.id, teacher.id, f"高二-{tag}")
        zhang, li = add_student(session, classroom.id, "张三", "01"), add_student(session, classroom.id, "李四", "02")
        chat = ChatSession(student_id=zhang.id)
        session.add(chat)
        session.flush()
        for question, status, topic in (("开头怎么写", TurnStatus.done, "结构布局"),
                                        ("开头怎么写", TurnStatus.done, "结构布局"),
                                        ("=1+1 赌博", TurnStatus.blocked, "其他")):
            session.add(ChatTurn(session_id=chat.id, student_id=zhang.id, classroom_id=classroom.id, question=question,
                                 answer="", status=status, topic=topic, sources=[], new_tokens=0,
                                 notice="已拦截" if status == TurnStatus.blocked else None))
        ids = (school.id, classroom.id, li.id)
    empty = Workbook()
    with db_sessions() as session:
        assert add_chat_sheet(empty, session, -1, UTC) is False and CHAT_SHEET not in empty.sheetnames
        wb = Workbook(write_only=True)
        assert add_chat_sheet(wb, session, ids[1], UTC)
    path = tmp_path / "chat.xlsx"
    wb.save(path)
    rows = [[c for c in row if c is not None] for row in load_workbook(path)[CHAT_SHEET].iter_rows(values_only=True)]
    assert rows[1] == ["共 3 个问题（含被拦截和拒答的）；从未提问：李四"]
    assert ["01", "张三", 3] in rows and ["02", "李四", 0] in rows
    assert ["结构布局", 2] in rows and ["开头怎么写", 2] in rows
    assert [utcnow().date().isoformat(), 3, "结构布局 2、其他 1"] in rows
    blocked = next(r for r in rows if len(r) == 4 and r[1] == "张三")
    assert blocked[2] == "=1+1 赌博" and blocked[3] == "已拦截：已拦截"  # a string cell, not a formula
    with transaction(db_sessions) as session:
        session.delete(session.get(Classroom, ids[1]))
        session.flush()
        session.delete(session.get(School, ids[0]))


def test_questions_are_counted_on_the_day_people_read(db_sessions: sessionmaker[Session]) -> None:
    """A question at 20:00 UTC on 31 January was asked on 1 February in Beijing."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from shared.chat.analytics import class_analytics

    tag = uuid.uuid4().hex[:8]
    evening = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)
    with transaction(db_sessions) as session:
        school = add_school(session, f"时区中学-{tag}")
        teacher = add_user(session, f"zone-{tag}", "吴老师", school_id=school.id)
        classroom = add_classroom(session, school.id, teacher.id, f"高一-{tag}")
        student = add_student(session, classroom.id, "张三", "01")
        chat = ChatSession(student_id=student.id, created_at=evening, last_active_at=evening)
        session.add(chat)
        session.flush()
        session.add(ChatTurn(session_id=chat.id, student_id=student.id, classroom_id=classroom.id, question="问题",
                             answer="回答", status=TurnStatus.done, topic="其他", sources=[], new_tokens=2,
                             created_at=evening))
        classroom_id, school_id = classroom.id, school.id
    with db_sessions() as session:
        beijing = class_analytics(session, classroom_id)
        utc = class_analytics(session, classroom_id, zone=ZoneInfo("UTC"))
    assert [day for day, _, _ in beijing.per_day] == ["2026-02-01"]
    assert [day for day, _, _ in utc.per_day] == ["2026-01-31"]
    with transaction(db_sessions) as session:
        session.delete(session.get(School, school_id))
