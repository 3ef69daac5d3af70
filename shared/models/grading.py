"""Assignments, essays and their versioned grades with located errors and deductions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, CreatedAtMixin
from shared.models.org import Classroom, Student, User


class EssayStatus(enum.StrEnum):
    queued = "queued"
    grading = "grading"
    graded = "graded"
    failed = "failed"


class GradeSource(enum.StrEnum):
    model = "model"
    teacher = "teacher"


class Assignment(CreatedAtMixin, Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    classroom_id: Mapped[int] = mapped_column(ForeignKey("classrooms.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    prompt_text: Mapped[str] = mapped_column(Text)
    genre: Mapped[str] = mapped_column(String(40), default="议论文")
    # A shipped rubric's id, or the path of a school's own rubric file under data_dir/rubrics.
    rubric_id: Mapped[str] = mapped_column(String(500))
    rubric_version: Mapped[str] = mapped_column(String(40))
    required_length: Mapped[int] = mapped_column(Integer, default=800)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # 双评: off | sample | all | low_confidence (shared.models.double_marking.DoubleMarkingMode); the share is percent.
    double_marking: Mapped[str] = mapped_column(String(20), default="off", server_default="off")
    double_marking_share: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    classroom: Mapped[Classroom] = relationship()
    essays: Mapped[list[Essay]] = relationship(back_populates="assignment", cascade="all, delete-orphan")


class Essay(CreatedAtMixin, Base):
    __tablename__ = "essays"
    __table_args__ = (UniqueConstraint("assignment_id", "student_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    source_filename: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    char_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[EssayStatus] = mapped_column(
        Enum(EssayStatus, native_enum=False, length=20, create_constraint=True),
        default=EssayStatus.queued,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A claim is held until then; the grading task renews it while it works, so an expired lease means the
    # task is gone (killed, time limit, lost broker) and the essays may be recovered.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    assignment: Mapped[Assignment] = relationship(back_populates="essays")
    student: Mapped[Student] = relationship()
    grades: Mapped[list[Grade]] = relationship(
        back_populates="essay", cascade="all, delete-orphan", order_by="Grade.version"
    )


def abandoned_claim(now: datetime) -> ColumnElement[bool]:
    """Essays held by a grading task that is gone: `grading` with a lease that ran out before ``now``. The sweep,
    a regrade and the retention purge may take them back."""
    return and_(Essay.status == EssayStatus.grading, func.coalesce(Essay.lease_until, Essay.claimed_at) < now)


class Grade(CreatedAtMixin, Base):
    """One version of an essay's grade; teacher overrides and regrades add versions, never rewrite."""

    __tablename__ = "grades"
    __table_args__ = (UniqueConstraint("essay_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    essay_id: Mapped[int] = mapped_column(ForeignKey("essays.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    rubric_id: Mapped[str] = mapped_column(String(80))
    rubric_version: Mapped[str] = mapped_column(String(40))
    prompt_version: Mapped[str | None] = mapped_column(String(40))
    dimension_scores: Mapped[dict[str, Any]] = mapped_column()
    bands: Mapped[dict[str, Any]] = mapped_column()
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw_total: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    caps: Mapped[list[Any]] = mapped_column(default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[GradeSource] = mapped_column(
        Enum(GradeSource, native_enum=False, length=20, create_constraint=True)
    )
    model_name: Mapped[str | None] = mapped_column(String(200))
    engine: Mapped[str | None] = mapped_column(String(80))
    # The LoRA adapter (its name, shared.models.adapters) the model graded with; None: the base model alone.
    adapter: Mapped[str | None] = mapped_column(String(80))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    generated_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    dropped_quotes: Mapped[int] = mapped_column(Integer, default=0)
    # A model grade of an essay flagged for injection: its score is withheld (待复核) until a teacher confirms or
    # overrides it (a teacher grade version supersedes it).
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    # What this version is in 双评 (second | third | arbitration | final); None for a model grade or an override.
    reading: Mapped[str | None] = mapped_column(String(20))
    # The model's confidence in its scores (0..1), where the engine measured one.
    confidence: Mapped[float | None] = mapped_column(Float)

    essay: Mapped[Essay] = relationship(back_populates="grades")
    author: Mapped[User | None] = relationship()
    errors: Mapped[list[ErrorAnnotation]] = relationship(
        back_populates="grade", cascade="all, delete-orphan", order_by="ErrorAnnotation.start_offset"
    )
    deductions: Mapped[list[Deduction]] = relationship(back_populates="grade", cascade="all, delete-orphan")


class ErrorAnnotation(Base):
    __tablename__ = "error_annotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    original: Mapped[str] = mapped_column(String(200))
    suggestion: Mapped[str] = mapped_column(String(200), default="")
    explanation: Mapped[str] = mapped_column(Text, default="")
    origin: Mapped[str] = mapped_column(String(40))

    grade: Mapped[Grade] = relationship(back_populates="errors")


class Deduction(Base):
    __tablename__ = "deductions"

    id: Mapped[int] = mapped_column(primary_key=True)
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(40))
    points: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text)

    grade: Mapped[Grade] = relationship(back_populates="deductions")
