"""Who uses the system and whom it is about: schools, users, classes and their rosters."""

from __future__ import annotations

import enum
import unicodedata
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from shared.models.base import Base, CreatedAtMixin


class Role(enum.StrEnum):
    teacher = "teacher"
    school_admin = "school_admin"
    sysadmin = "sysadmin"
    # A student of one roster (User.student_id): signs in to see their own essays and to chat (shared/models/chat.py).
    student = "student"


class School(CreatedAtMixin, Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)

    classrooms: Mapped[list[Classroom]] = relationship(back_populates="school", cascade="all, delete-orphan")


def username_key(username: str) -> str:
    """What makes usernames the same: trimmed, NFKC-normalised, case-folded (``Wang`` = ``wang `` = ``ＷＡＮＧ``)."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


class User(CreatedAtMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    # Kept in step with ``username`` by the validator below; its unique index makes case/space twins impossible.
    username_key: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20, create_constraint=True))
    password_hash: Mapped[str] = mapped_column(String(255))
    api_token_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    api_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Part of every session cookie's fingerprint: bumping it (logout, password, role, deactivation) ends them all.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Set only for Role.student: the roster entry this account belongs to (one account per student).
    student_id: Mapped[int | None] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE", use_alter=True), unique=True
    )

    school: Mapped[School | None] = relationship()

    @validates("username")
    def _keep_key(self, _key: str, value: str) -> str:
        value = value.strip()
        self.username_key = username_key(value)
        return value


class Classroom(CreatedAtMixin, Base):
    __tablename__ = "classrooms"
    __table_args__ = (UniqueConstraint("school_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(100))

    school: Mapped[School] = relationship(back_populates="classrooms")
    teacher: Mapped[User] = relationship()
    students: Mapped[list[Student]] = relationship(back_populates="classroom", cascade="all, delete-orphan")


class Student(CreatedAtMixin, Base):
    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("classroom_id", "student_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    classroom_id: Mapped[int] = mapped_column(ForeignKey("classrooms.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    student_number: Mapped[str | None] = mapped_column(String(50))

    classroom: Mapped[Classroom] = relationship(back_populates="students")
