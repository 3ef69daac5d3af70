"""Who is acting (user or anonymous, and from where), so service functions can write audit rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from shared import audit
from shared.models import AuditLog


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: int | None
    ip: str | None

    def record(
        self, session: Session, action: str, *, object_type: str | None = None, object_id: int | None = None,
        **details: Any,
    ) -> AuditLog:
        """Add an audit row for this actor to the session's transaction."""
        return audit.record(
            session, action, actor=self.name[:120], actor_id=self.user_id, object_type=object_type,
            object_id=object_id, ip=self.ip, **details,
        )
