"""Writing audit rows: who did what to which object, never the personal content itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shared.models import AuditLog


def record(
    session: Session,
    action: str,
    *,
    actor: str,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    ip: str | None = None,
    **details: Any,
) -> AuditLog:
    """Add an audit row to the caller's transaction so it commits (or not) with the change it describes."""
    row = AuditLog(
        action=action, actor=actor, actor_id=actor_id, object_type=object_type, object_id=object_id,
        ip=ip, details=details,
    )
    session.add(row)
    return row
