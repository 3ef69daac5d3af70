"""``chat.answer_turn``: claim a queued chat turn, build its prompt, stream the answer into the turn's row (the web
relays it to the browser), stop at a blocked word, and audit the outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from services.worker.chat.context import build_prompt
from services.worker.chat.stream import StreamResult, count_tokens, stream_answer
from shared import audit
from shared.chat.policy import builtin_blocked_words, chat_policy
from shared.chat.wordfilter import WordFilter
from shared.models import BlockedWord, ChatTurn, Classroom, TurnStatus, transaction
from shared.models.base import utcnow
from shared.settings import Settings
from shared.tasks import CHAT_TASK

logger = logging.getLogger(__name__)

ANSWER_ACTION = "chat.answer"


def register_chat_tasks(app: Celery) -> None:
    @app.task(name=CHAT_TASK, bind=True)
    def answer_turn(self: Task, turn_id: int) -> dict[str, Any]:
        redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
        return run_chat_turn(runtime.sessions(), runtime.engine, turn_id, runtime.settings(), redelivered=redelivered)


class AnswerWriter:
    """Receives the answer so far; writes the part that cannot yet be the start of a blocked word to the row, and
    stops the stream at a blocked word (the row keeps only the text before it)."""

    def __init__(self, sessions: sessionmaker[Session], turn_id: int, words: WordFilter) -> None:
        self.sessions, self.turn_id, self.words = sessions, turn_id, words
        self.hold = max((len(w) for w in words.words), default=1) - 1
        self.written = ""
        self.blocked: str | None = None

    def on_text(self, text: str) -> bool:
        hit = self.words.first_hit(text)
        if hit is not None:
            self.blocked = hit.word
            self._write(text[:hit.start])
            return False
        safe = text[: max(0, len(text) - self.hold)]
        if len(safe) > len(self.written):
            self._write(safe)
        return True

    def _write(self, text: str) -> None:
        with transaction(self.sessions) as session:
            session.execute(update(ChatTurn).where(ChatTurn.id == self.turn_id).values(answer=text))
        self.written = text


def _school_words(session: Session, classroom_id: int) -> WordFilter:
    school_id = session.scalar(select(Classroom.school_id).where(Classroom.id == classroom_id))
    extra = session.scalars(select(BlockedWord.word).where(BlockedWord.school_id == school_id)).all()
    return WordFilter([*builtin_blocked_words(), *extra])


def _claim(sessions: sessionmaker[Session], turn_id: int, redelivered: bool) -> bool:
    """queued → streaming; a redelivered task (its worker died mid-answer) also takes back a streaming turn."""
    claimable = [TurnStatus.queued, TurnStatus.streaming] if redelivered else [TurnStatus.queued]
    with transaction(sessions) as session:
        result = session.execute(update(ChatTurn).where(ChatTurn.id == turn_id, ChatTurn.status.in_(claimable))
                                 .values(status=TurnStatus.streaming, answer=""))
        return bool(result.rowcount)


def _finish(sessions: sessionmaker[Session], turn_id: int, status: TurnStatus, *, answer: str | None,
            notice: str | None, new_tokens: int, details: dict[str, Any]) -> None:
    values: dict[str, Any] = {"status": status, "notice": notice, "new_tokens": new_tokens, "finished_at": utcnow()}
    if answer is not None:
        values["answer"] = answer
    with transaction(sessions) as session:
        session.execute(update(ChatTurn).where(ChatTurn.id == turn_id).values(**values))
        audit.record(session, ANSWER_ACTION, actor="worker", object_type="chat_turn", object_id=turn_id,
                     status=str(status), new_tokens=new_tokens, **details)


def run_chat_turn(sessions: sessionmaker[Session], engine_of: Callable[[], Any], turn_id: int, settings: Settings, *,
                  redelivered: bool = False) -> dict[str, Any]:
    """Answer one turn; ``engine_of`` gives the loaded engine (raising when this worker has none)."""
    if not _claim(sessions, turn_id, redelivered):
        return {"turn": turn_id, "skipped": True}
    policy = chat_policy()
    try:
        engine = engine_of()
        with sessions() as session:
            turn = session.get(ChatTurn, turn_id)
            if turn is None:
                return {"turn": turn_id, "skipped": True}
            prompt = build_prompt(session, turn, context_tokens=settings.chat_context_tokens,
                                  max_new_tokens=settings.chat_max_new_tokens,
                                  count=lambda text: count_tokens(engine, text))
            words = _school_words(session, turn.classroom_id)
        with transaction(sessions) as session:
            session.execute(update(ChatTurn).where(ChatTurn.id == turn_id).values(sources=prompt.sources))
        writer = AnswerWriter(sessions, turn_id, words)
        result: StreamResult = stream_answer(engine, prompt.messages, max_new_tokens=settings.chat_max_new_tokens,
                                             on_text=writer.on_text)
    except BaseException:
        logger.exception("chat turn %s failed", turn_id)
        _finish(sessions, turn_id, TurnStatus.failed, answer=None, notice=policy.refusals["failed"], new_tokens=0,
                details={})
        raise
    details = {"sources": len(prompt.sources), "history_turns": prompt.history_turns,
               "withheld": prompt.withheld_passages, "first_token_s": round(result.first_token_s or 0.0, 3)}
    if writer.blocked is not None:
        _finish(sessions, turn_id, TurnStatus.blocked, answer=writer.written, notice=policy.refusals["blocked_answer"],
                new_tokens=result.new_tokens, details={**details, "blocked_word": writer.blocked})
        return {"turn": turn_id, "status": "blocked"}
    _finish(sessions, turn_id, TurnStatus.done, answer=result.text, notice=None, new_tokens=result.new_tokens,
            details=details)
    logger.info("chat turn %s: %s new tokens, first after %.2f s", turn_id, result.new_tokens,
                result.first_token_s or 0.0)
    return {"turn": turn_id, "status": "done", "new_tokens": result.new_tokens}
