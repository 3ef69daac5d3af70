"""What a class asks the chat: questions per student, topic and day, the most asked, who never asked, and what was
blocked, refused or failed. Shown on the teacher's 提问统计 page and written as a sheet of the class workbook."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.clock import in_zone, people_zone
from shared.models import ChatTurn, Student, TurnStatus


@dataclass
class ChatAnalytics:
    per_student: list[tuple[Student, int]]  # every roster student with their question count, most first
    per_topic: list[tuple[str, int]]
    per_day: list[tuple[str, int, str]]  # day (in the zone people read), questions, "topic n、topic n" most first
    most_asked: list[tuple[str, int]]
    never_asked: list[Student]
    blocked: list[ChatTurn] = field(default_factory=list)  # blocked, refused and failed turns, newest first
    total: int = 0
    names: dict[int, str] = field(default_factory=dict)  # student id → name


def class_analytics(session: Session, classroom_id: int, *, top: int = 10,
                    zone: tzinfo | None = None) -> ChatAnalytics:
    students = list(session.scalars(select(Student).where(Student.classroom_id == classroom_id)
                                    .order_by(Student.student_number, Student.name)))
    turns = list(session.scalars(select(ChatTurn).where(ChatTurn.classroom_id == classroom_id)
                                 .order_by(ChatTurn.created_at.desc(), ChatTurn.id.desc())))
    counts = Counter(turn.student_id for turn in turns)
    per_student = sorted(((s, counts[s.id]) for s in students), key=lambda pair: -pair[1])
    questions = Counter(" ".join(turn.question.split()) for turn in turns)
    days: dict[str, Counter[str]] = {}
    for turn in turns:
        day = in_zone(turn.created_at, zone or people_zone()).date().isoformat()
        days.setdefault(day, Counter())[turn.topic] += 1
    return ChatAnalytics(
        per_student=per_student,
        per_topic=Counter(turn.topic for turn in turns).most_common(),
        per_day=[(day, sum(topics.values()), _breakdown(topics)) for day, topics in sorted(days.items())],
        most_asked=questions.most_common(top),
        never_asked=[s for s in students if not counts[s.id]],
        blocked=[t for t in turns if t.status in (TurnStatus.blocked, TurnStatus.refused, TurnStatus.failed)],
        total=len(turns),
        names={s.id: s.name for s in students},
    )


def _breakdown(topics: Counter[str]) -> str:
    """``结构布局 2、字词标点 1``: most asked first, ties in a fixed order."""
    ordered = sorted(topics.items(), key=lambda item: (-item[1], item[0]))
    return "、".join(f"{topic} {count}" for topic, count in ordered)
