"""双评: who may arbitrate in a class, an essay's double-marking case, an assignment's 样卷 calibration and a school's
agreement threshold. The readings themselves are grade versions (``Grade.reading``)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAtMixin, utcnow


class DoubleMarkingMode(enum.StrEnum):
    off = "off"
    sample = "sample"  # a random share of the class (``Assignment.double_marking_share`` percent)
    all = "all"
    low_confidence = "low_confidence"  # low-confidence or flagged essays


class ClassRole(enum.StrEnum):
    lead = "lead"  # 备课组长: may arbitrate (三评/终评) in the class


class CaseStatus(enum.StrEnum):
    awaiting_arbitration = "awaiting_arbitration"
    settled = "settled"


class ClassroomRole(CreatedAtMixin, Base):
    __tablename__ = "classroom_roles"
    __table_args__ = (UniqueConstraint("classroom_id", "user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    classroom_id: Mapped[int] = mapped_column(ForeignKey("classrooms.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[ClassRole] = mapped_column(Enum(ClassRole, native_enum=False, length=20, create_constraint=True))


class DoubleMarkCase(CreatedAtMixin, Base):
    """One essay's double marking, opened by its second reading (one per essay: the unique key is what turns two
    teachers submitting the same second read at once into one reading and one conflict). ``readings`` counts the
    readings so far (model included) and guards arbitration with a compare-and-set."""

    __tablename__ = "double_mark_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    essay_id: Mapped[int] = mapped_column(ForeignKey("essays.id", ondelete="CASCADE"), unique=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    status: Mapped[CaseStatus] = mapped_column(
        Enum(CaseStatus, native_enum=False, length=30, create_constraint=True), index=True
    )
    needs: Mapped[str | None] = mapped_column(String(30))  # third_reading | arbitration while awaiting
    readings: Mapped[int] = mapped_column(Integer)
    totals: Mapped[list[Any]] = mapped_column(default=list)  # the readings' totals in order (model first)
    final_total: Mapped[int | None] = mapped_column(Integer)
    final_rule: Mapped[str | None] = mapped_column(String(30))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Calibration(CreatedAtMixin, Base):
    """An assignment's 样卷 calibration: per dimension a monotone map from the model's score to the teachers'."""

    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    anchors: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(20))
    maps: Mapped[dict[str, Any]] = mapped_column()
    fitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgreementSetting(Base):
    """A school's warning threshold: the dashboard warns where model–teacher QWK falls below it."""

    __tablename__ = "agreement_settings"

    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), primary_key=True)
    qwk_threshold: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
