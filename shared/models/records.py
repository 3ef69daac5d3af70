"""Append-only audit log, report jobs, training plans and worker status records."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, ForeignKey, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAtMixin, utcnow


class AuditLog(Base):
    """Append-only: the ORM refuses updates and deletes (PostgreSQL permissions back this up)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditLogIsAppendOnly(RuntimeError):
    pass


@event.listens_for(AuditLog, "before_update")
def _refuse_audit_update(*_: object) -> None:
    raise AuditLogIsAppendOnly("audit_log rows cannot be updated")


@event.listens_for(AuditLog, "before_delete")
def _refuse_audit_delete(*_: object) -> None:
    raise AuditLogIsAppendOnly("audit_log rows cannot be deleted")


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class ReportJob(CreatedAtMixin, Base):
    __tablename__ = "report_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    classroom_id: Mapped[int | None] = mapped_column(ForeignKey("classrooms.id", ondelete="CASCADE"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=20, create_constraint=True), default=JobStatus.queued
    )
    file_path: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrainingPlan(CreatedAtMixin, Base):
    __tablename__ = "training_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    essay_ids: Mapped[list[Any]] = mapped_column(default=list)
    focus_areas: Mapped[list[Any]] = mapped_column(default=list)
    narrative: Mapped[str] = mapped_column(Text, default="")
    model_name: Mapped[str | None] = mapped_column(String(200))


class WorkerStatus(Base):
    """What each worker process last said about itself, so the web can show a worker that cannot load."""

    __tablename__ = "worker_status"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    queues: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(300))
    device: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[str | None] = mapped_column(Text)
    # Memory the loaded model holds (CUDA allocated, or the process RSS on CPU), refreshed after each batch.
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
