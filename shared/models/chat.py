"""The student Q&A assistant (issue 21): what students may see per class, their sign-in codes, chat sessions and
turns, the class materials answers are grounded in, and a school's own blocked words."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAtMixin, utcnow


class StudentAccess(Base):
    """Per class: whether its students see their grades and whether they may chat (both closed by default)."""

    __tablename__ = "student_access"

    classroom_id: Mapped[int] = mapped_column(ForeignKey("classrooms.id", ondelete="CASCADE"), primary_key=True)
    grades_open: Mapped[bool] = mapped_column(default=False)
    chat_open: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudentCode(CreatedAtMixin, Base):
    """A one-time sign-up code a teacher made for one roster student; only its hash is kept."""

    __tablename__ = "student_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ChatSession(CreatedAtMixin, Base):
    """One conversation of a student; idle past ``chat_idle_minutes`` it is closed and a new one starts."""

    __tablename__ = "chat_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    last_active_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class TurnStatus(enum.StrEnum):
    queued = "queued"  # stored, waiting for a worker
    streaming = "streaming"  # a worker is appending to ``answer``
    done = "done"
    blocked = "blocked"  # the question, or the answer mid-stream, hit the sensitive-word filter
    refused = "refused"  # off-topic, or over the rate limit: never sent to the model
    failed = "failed"


FINISHED = frozenset({TurnStatus.done, TurnStatus.blocked, TurnStatus.refused, TurnStatus.failed})


class ChatTurn(CreatedAtMixin, Base):
    """A question and its answer; the worker appends the answer as tokens come, and the web relays it (SSE)."""

    __tablename__ = "chat_turns"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    classroom_id: Mapped[int] = mapped_column(ForeignKey("classrooms.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TurnStatus] = mapped_column(
        Enum(TurnStatus, native_enum=False, length=20, create_constraint=True), default=TurnStatus.queued
    )
    notice: Mapped[str | None] = mapped_column(String(200))  # why it was blocked, refused or failed (shown)
    topic: Mapped[str] = mapped_column(String(40), default="其他")
    # [{"kind": "material"|"essay"|"plan", "title": ..., "ref": ...}] the answer was grounded in.
    sources: Mapped[list[Any]] = mapped_column(default=list)
    new_tokens: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChatMaterial(CreatedAtMixin, Base):
    """A class material (教材节选, 讲义, 范文, FAQ) uploaded by the teacher; its chunks are what retrieval ranks."""

    __tablename__ = "chat_materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    classroom_id: Mapped[int] = mapped_column(ForeignKey("classrooms.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ChatChunk(Base):
    """A passage of a material and its jieba tokens (space-separated), for BM25."""

    __tablename__ = "chat_chunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("chat_materials.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)


class BlockedWord(CreatedAtMixin, Base):
    """A school's addition to the built-in sensitive-word list (shared/prompts/chat/blocked_words.txt)."""

    __tablename__ = "chat_blocked_words"
    __table_args__ = (UniqueConstraint("school_id", "word"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    word: Mapped[str] = mapped_column(String(50))
