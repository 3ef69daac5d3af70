"""LoRA adapters trained on a school's teacher-final grades: the training job, the card, which one is active.

An adapter's files live under ``data_dir/adapters/<name>``; this row is its record. At most one adapter per school
is ``active``; promoting one records the adapter it replaced (``previous_id``) so that a rollback can restore it.
``AdapterStudent`` keeps which students' essays trained it (a plain id, no foreign key: an erasure must still find
the adapters after the student is gone).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAtMixin


class AdapterStatus(enum.StrEnum):
    queued = "queued"
    training = "training"
    evaluating = "evaluating"
    trained = "trained"  # finished, not (or no longer) active: it lost the gate, or was replaced
    active = "active"
    rolled_back = "rolled_back"
    cancelled = "cancelled"
    failed = "failed"
    deleted = "deleted"  # files removed (e.g. after an erasure); the row stays for the grades that name it


class Adapter(CreatedAtMixin, Base):
    __tablename__ = "adapters"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    # The directory name under data_dir/adapters, also the name grades record.
    name: Mapped[str] = mapped_column(String(80), unique=True)
    status: Mapped[AdapterStatus] = mapped_column(
        Enum(AdapterStatus, native_enum=False, length=20, create_constraint=True), default=AdapterStatus.queued,
        index=True,
    )
    base_model: Mapped[str] = mapped_column(String(300))
    rubric_id: Mapped[str] = mapped_column(String(500))
    rubric_version: Mapped[str | None] = mapped_column(String(40))
    # Hyper-parameters asked for; the card (written when training ends) holds everything else.
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    card: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Progress while training: steps done of steps planned, and the loss per logged step ([step, loss] pairs).
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    losses: Mapped[list[Any]] = mapped_column(default=list)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str | None] = mapped_column(Text)
    # The adapter that was active when this one was promoted (None: the base model alone).
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("adapters.id", ondelete="SET NULL"))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AdapterStudent(Base):
    """One student whose essays were in an adapter's training or validation data."""

    __tablename__ = "adapter_students"

    adapter_id: Mapped[int] = mapped_column(ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
