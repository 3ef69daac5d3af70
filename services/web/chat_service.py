"""A student's question: checked (class open, rate limit, sensitive words, off-topic), stored as a chat turn,
audited, and sent to the chat queue by name. The answer is written by a worker (services/worker/chat)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.web.actor import Actor
from shared.chat.policy import builtin_blocked_words, chat_policy
from shared.chat.wordfilter import WordFilter
from shared.models import BlockedWord, ChatSession, ChatTurn, Student, TurnStatus
from shared.models.base import utcnow
from shared.settings import Settings
from shared.tasks import CHAT_TASK

MAX_QUESTION_CHARS = 500
ASK_ACTION = "chat.ask"

logger = logging.getLogger(__name__)


class QuestionRejected(ValueError):
    """Empty or too long: nothing is stored."""


def school_word_filter(session: Session, school_id: int | None) -> WordFilter:
    extra = session.scalars(select(BlockedWord.word).where(BlockedWord.school_id == school_id)).all() \
        if school_id is not None else []
    return WordFilter([*builtin_blocked_words(), *extra])


def current_session(session: Session, student_id: int, idle_minutes: int, *, create: bool) -> ChatSession | None:
    """The student's conversation still within the idle time; a new one when asked to create and there is none."""
    cutoff = utcnow() - timedelta(minutes=idle_minutes)
    chat = session.scalar(select(ChatSession).where(ChatSession.student_id == student_id,
                                                    ChatSession.last_active_at >= cutoff)
                          .order_by(ChatSession.last_active_at.desc(), ChatSession.id.desc()).limit(1))
    if chat is None and create:
        chat = ChatSession(student_id=student_id, last_active_at=utcnow())
        session.add(chat)
        session.flush()
    return chat


def session_turns(session: Session, chat_id: int) -> list[ChatTurn]:
    return list(session.scalars(select(ChatTurn).where(ChatTurn.session_id == chat_id).order_by(ChatTurn.id)))


def ask(session: Session, who: Actor, student: Student, school_id: int | None, question: str, settings: Settings,
        sender: object) -> ChatTurn:
    """Store the turn (queued, or already finished as blocked/refused) and enqueue it; the caller commits."""
    question = question.strip()
    if not question:
        raise QuestionRejected("请先输入问题。")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionRejected(f"问题不能超过 {MAX_QUESTION_CHARS} 个字。")
    policy = chat_policy()
    chat = current_session(session, student.id, settings.chat_idle_minutes, create=True)
    assert chat is not None
    chat.last_active_at = utcnow()
    turn = ChatTurn(session_id=chat.id, student_id=student.id, classroom_id=student.classroom_id, question=question,
                    answer="", status=TurnStatus.queued, topic=policy.topic_of(question), sources=[], new_tokens=0)
    asked = session.scalar(select(func.count(ChatTurn.id)).where(
        ChatTurn.student_id == student.id, ChatTurn.created_at >= utcnow() - timedelta(hours=1)))
    hit = school_word_filter(session, school_id).first_hit(question)
    if (asked or 0) >= settings.chat_questions_per_hour:
        limit = settings.chat_questions_per_hour
        _finish(turn, TurnStatus.refused, policy.refusals["rate_limited"].format(limit=limit))
    elif hit is not None:
        _finish(turn, TurnStatus.blocked, policy.refusals["blocked_question"])
    elif policy.is_off_topic(question):
        _finish(turn, TurnStatus.refused, policy.refusals["off_topic"])
    session.add(turn)
    session.flush()
    details = {"status": str(turn.status), "topic": turn.topic, "chars": len(question)}
    if hit is not None:
        details["blocked_word"] = hit.word
    who.record(session, ASK_ACTION, object_type="chat_turn", object_id=turn.id, **details)
    if turn.status == TurnStatus.queued:
        session.commit()  # the worker must find the row
        try:
            sender.send_task(CHAT_TASK, args=[turn.id])  # type: ignore[attr-defined]
        except Exception:  # the broker is away: the sweep sends the stored turn once it answers again
            logger.exception("could not send chat turn %s; the sweep will send it again", turn.id)
    return turn


def _finish(turn: ChatTurn, status: TurnStatus, notice: str) -> None:
    turn.status, turn.notice, turn.finished_at = status, notice, utcnow()


def sse_event(event: str, data: str) -> str:
    """One Server-Sent Event (``data`` is one line of JSON)."""
    return f"event: {event}\ndata: {data}\n\n"
