"""Writing audit rows: who did what to which object, never the personal content itself.

Details hold ids, counts and categories only: no student names, file names (which are often student
names) or essay text, so that erasing a student leaves nothing personal in the append-only log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from shared.models import AuditLog

_REASON_END = re.compile(r"[:：]")


def entry(
    action: str,
    *,
    actor: str,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    ip: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """The column values of one audit row."""
    return {
        "action": action, "actor": actor, "actor_id": actor_id, "object_type": object_type,
        "object_id": object_id, "ip": ip, "details": details,
    }


def record(session: Session, action: str, *, actor: str, **fields: Any) -> AuditLog:
    """Add an audit row to the caller's transaction so it commits (or not) with the change it describes.

    Takes `entry`'s arguments.
    """
    row = AuditLog(**entry(action, actor=actor, **fields))
    session.add(row)
    return row


def record_many(session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Insert many `entry` rows in one statement, inside the caller's transaction."""
    if entries:
        session.execute(insert(AuditLog.__table__), list(entries))


def reason_category(reason: str, limit: int = 60) -> str:
    """The category of a failure message: the text before its first colon (what follows may quote an essay)."""
    return _REASON_END.split(reason, maxsplit=1)[0].strip()[:limit]


def file_types(names: Iterable[str]) -> list[str]:
    """The distinct extensions of uploaded files, in place of their names."""
    return sorted({PurePath(name).suffix.lower().lstrip(".")[:10] or "?" for name in names})
