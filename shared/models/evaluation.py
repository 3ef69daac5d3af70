"""Evaluation jobs started from the web: the model measured against a school's teacher-final grades, on the gpu
queue, with progress the page can follow (``yuejuan eval`` without the command line)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAtMixin
from shared.models.records import JobStatus


class EvalJob(CreatedAtMixin, Base):
    __tablename__ = "eval_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    # None: every teacher-final grade of the school; else one assignment's.
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rubric_ref: Mapped[str] = mapped_column(String(300))
    essay_limit: Mapped[int | None] = mapped_column(Integer)  # grade at most this many (the newest are kept)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=20, create_constraint=True), default=JobStatus.queued
    )
    essays: Mapped[int] = mapped_column(Integer, default=0)  # essays in the set
    done: Mapped[int] = mapped_column(Integer, default=0)  # gradings done (the set, its rerun and alone passes)
    total: Mapped[int] = mapped_column(Integer, default=0)  # gradings to do
    headline: Mapped[dict[str, Any]] = mapped_column(default=dict)  # summary.headline() once done
    directory: Mapped[str | None] = mapped_column(String(500))  # under data_dir: rows.jsonl, summary.json, eval.xlsx
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last progress written
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
