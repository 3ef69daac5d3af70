"""The teaching assistant (issue 20): 立意 analyses and 素材 picks cached by what they were made from, each
assignment's edited 立意 and chosen angle, a school's own 素材 entries, and versioned 教案.

Model work runs on the gpu queue; a row is created ``queued`` by the web and claimed ``queued → running`` once by
the worker, so a redelivered task does not call the model again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, CreatedAtMixin
from shared.models.records import JobStatus

_STATUS = Enum(JobStatus, native_enum=False, length=20, create_constraint=True)


class TopicAnalysis(CreatedAtMixin, Base):
    """The model's 立意 angles for one prompt text under one rubric: one row per ``cache_key`` (a digest of both),
    shared by every assignment that asks the same thing, so a second request costs no model call."""

    __tablename__ = "topic_analyses"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(64), unique=True)
    prompt_text: Mapped[str] = mapped_column(Text)
    rubric_ref: Mapped[str] = mapped_column(String(500))
    rubric_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[JobStatus] = mapped_column(_STATUS, default=JobStatus.queued)
    angles: Mapped[list[Any]] = mapped_column(default=list)  # [{thesis, keywords, relation, off_topic}] safest first
    model_name: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    # When a task was last sent for it: a row still unfinished long after (its worker died) may be sent again.
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MaterialPick(CreatedAtMixin, Base):
    """The model's choice of 素材 for one 立意 among retrieved library entries (``candidates``), with how each could
    be used; cached by a digest of the angle, the candidates and the library version."""

    __tablename__ = "material_picks"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The school whose own entries were among the candidates (None: the shipped library only).
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    prompt_text: Mapped[str] = mapped_column(Text)
    angle: Mapped[dict[str, Any]] = mapped_column(default=dict)
    candidates: Mapped[list[Any]] = mapped_column(default=list)  # entry ids, best retrieved first
    status: Mapped[JobStatus] = mapped_column(_STATUS, default=JobStatus.queued)
    picks: Mapped[list[Any]] = mapped_column(default=list)  # [{id, usage}]
    model_name: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AssignmentTopic(Base):
    """An assignment's 题目解析 as the teacher keeps it: the cached analysis, the teacher's edited angles (None: as
    generated), the chosen angle and the 素材 picked for it."""

    __tablename__ = "assignment_topics"

    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True)
    analysis_id: Mapped[int | None] = mapped_column(ForeignKey("topic_analyses.id", ondelete="SET NULL"))
    edited_angles: Mapped[list[Any] | None] = mapped_column()
    chosen: Mapped[int | None] = mapped_column(Integer)  # index into the angles shown
    pick_id: Mapped[int | None] = mapped_column(ForeignKey("material_picks.id", ondelete="SET NULL"))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    analysis: Mapped[TopicAnalysis | None] = relationship()
    pick: Mapped[MaterialPick | None] = relationship()


class SchoolMaterial(CreatedAtMixin, Base):
    """A school's own 素材 entry, added by its admin; searched and picked like the shipped library's."""

    __tablename__ = "school_materials"
    __table_args__ = (UniqueConstraint("school_id", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # case | quotation | poem
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")  # the quotation or lines themselves; empty for a case
    themes: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class LessonPlan(CreatedAtMixin, Base):
    """A 教案 request: a teaching goal and/or an assignment (whose class statistics, masked, are kept in ``facts``);
    its content lives in versions, the model's first and each teacher edit after."""

    __tablename__ = "lesson_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    goal: Mapped[str] = mapped_column(Text, default="")
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[JobStatus] = mapped_column(_STATUS, default=JobStatus.queued)
    model_name: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    versions: Mapped[list[LessonPlanVersion]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="LessonPlanVersion.version"
    )


class LessonPlanVersion(CreatedAtMixin, Base):
    __tablename__ = "lesson_plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("lesson_plans.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column()
    source: Mapped[str] = mapped_column(String(20))  # model | teacher
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    plan: Mapped[LessonPlan] = relationship(back_populates="versions")
