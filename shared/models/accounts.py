"""Login throttling: one counter row per (username, address), claimed with a conditional UPDATE."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base


class LoginThrottle(Base):
    """Attempts at one username from one address since ``window_start`` (a success deletes the row)."""

    __tablename__ = "login_throttles"

    username_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
