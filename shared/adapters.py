"""LoRA adapters without torch: where their files live, which one is active for a school and rubric, promotion,
rollback, cancellation, deletion, and which adapters a student's essays trained.

The web, the workers and the erasure all use these; training and evaluation themselves are in
``services/worker/training``. Every change of state writes an audit row in the caller's transaction.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared import audit
from shared.models import Adapter, AdapterStatus, AdapterStudent
from shared.models.base import utcnow

logger = logging.getLogger(__name__)

CARD_FILE = "card.json"
# States in which an adapter's files are complete and it may be (re)activated.
USABLE = (AdapterStatus.trained, AdapterStatus.active, AdapterStatus.rolled_back)
RUNNING = (AdapterStatus.queued, AdapterStatus.training, AdapterStatus.evaluating)


class AdapterRefused(ValueError):
    """A promotion, rollback or deletion that cannot be done; the message says why (Chinese, for the page)."""


def adapters_dir(data_dir: Path) -> Path:
    return data_dir / "adapters"


def adapter_path(data_dir: Path, name: str) -> Path:
    return adapters_dir(data_dir) / name


def new_adapter_name(school_id: int) -> str:
    """Unique, sortable by creation time, safe as a directory name."""
    return f"school{school_id}-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def active_adapter(session: Session, school_id: int, rubric_id: str) -> Adapter | None:
    return session.scalar(select(Adapter).where(
        Adapter.school_id == school_id, Adapter.rubric_id == rubric_id, Adapter.status == AdapterStatus.active
    ))


def active_adapter_names(session: Session, school_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    """The active adapter's name per (school, rubric id) for these schools: what a grading batch loads."""
    ids = list(set(school_ids))
    if not ids:
        return {}
    rows = session.execute(select(Adapter.school_id, Adapter.rubric_id, Adapter.name).where(
        Adapter.school_id.in_(ids), Adapter.status == AdapterStatus.active
    ))
    return {(school_id, rubric_id): name for school_id, rubric_id, name in rows}


def promote(session: Session, adapter: Adapter, *, actor: str, actor_id: int | None = None,
            figures: dict[str, object] | None = None) -> None:
    """Make ``adapter`` the active one of its school and rubric; the one it replaces is kept for a rollback."""
    if adapter.status not in USABLE:
        raise AdapterRefused(f"适配器 {adapter.name} 的状态是 {adapter.status}，不能启用。")
    current = active_adapter(session, adapter.school_id, adapter.rubric_id)
    if current is not None and current.id == adapter.id:
        return
    if current is not None:
        current.status = AdapterStatus.trained
    adapter.previous_id = current.id if current is not None else None
    adapter.status = AdapterStatus.active
    adapter.activated_at = utcnow()
    session.flush()
    audit.record(session, "adapter.promote", actor=actor, actor_id=actor_id, object_type="adapter",
                 object_id=adapter.id, school_id=adapter.school_id, name=adapter.name,
                 replaced=current.id if current is not None else None, **(figures or {}))


def rollback(session: Session, school_id: int, rubric_id: str, *, actor: str, actor_id: int | None = None
             ) -> Adapter | None:
    """Retire the active adapter and bring back the one it replaced (None: the base model alone again).

    Returns the adapter now active. An adapter it replaced whose files were deleted cannot come back: then the
    base model grades alone.
    """
    current = active_adapter(session, school_id, rubric_id)
    if current is None:
        raise AdapterRefused("本校这一评分标准没有启用中的适配器，无需回滚。")
    current.status = AdapterStatus.rolled_back
    restored = session.get(Adapter, current.previous_id) if current.previous_id else None
    if restored is not None and restored.status in USABLE:
        restored.status = AdapterStatus.active
        restored.activated_at = utcnow()
    else:
        restored = None
    session.flush()
    audit.record(session, "adapter.rollback", actor=actor, actor_id=actor_id, object_type="adapter",
                 object_id=current.id, school_id=school_id, name=current.name,
                 restored=restored.id if restored is not None else None)
    return restored


def request_cancel(session: Session, adapter: Adapter, *, actor: str, actor_id: int | None = None) -> bool:
    """Ask a queued or running training job to stop; True if it was still running. A queued job that has not
    started stops before it loads anything."""
    changed = session.execute(
        update(Adapter).where(Adapter.id == adapter.id, Adapter.status.in_(RUNNING)).values(cancel_requested=True)
    ).rowcount
    if changed:
        audit.record(session, "adapter.cancel", actor=actor, actor_id=actor_id, object_type="adapter",
                     object_id=adapter.id, school_id=adapter.school_id)
    return bool(changed)


def delete_adapter(session: Session, data_dir: Path, adapter: Adapter, *, actor: str, actor_id: int | None = None,
                   reason: str = "") -> None:
    """Remove an adapter's files now (rolling back first if it is active); the row stays, ``deleted``, because
    grades name it. Should the caller's commit fail, the files are gone anyway: the safe side for privacy."""
    if adapter.status in RUNNING:
        raise AdapterRefused("训练尚未结束，请先取消训练。")
    if adapter.status == AdapterStatus.active:
        rollback(session, adapter.school_id, adapter.rubric_id, actor=actor, actor_id=actor_id)
    adapter.status = AdapterStatus.deleted
    session.flush()
    audit.record(session, "adapter.delete", actor=actor, actor_id=actor_id, object_type="adapter",
                 object_id=adapter.id, school_id=adapter.school_id, name=adapter.name, reason=reason)
    directory = adapter_path(data_dir, adapter.name)
    if directory.is_dir():
        shutil.rmtree(directory)


def record_students(session: Session, adapter_id: int, student_ids: Collection[int]) -> None:
    """Which students' essays an adapter was trained (and validated) on."""
    session.add_all(AdapterStudent(adapter_id=adapter_id, student_id=sid) for sid in sorted(set(student_ids)))


def adapters_trained_on(session: Session, student_ids: Collection[int]) -> list[Adapter]:
    """Adapters whose training data held an essay of one of these students (those without files left out:
    deleted, cancelled, failed)."""
    if not student_ids:
        return []
    return list(session.scalars(
        select(Adapter).where(
            Adapter.id.in_(select(AdapterStudent.adapter_id).where(AdapterStudent.student_id.in_(list(student_ids)))),
            Adapter.status.not_in([AdapterStatus.deleted, AdapterStatus.cancelled, AdapterStatus.failed]),
        ).order_by(Adapter.id)
    ))


def queue_adapter(session: Session, school_id: int, rubric_ref: str, rubric_version: str | None, base_model: str,
                  params: dict[str, Any], *, actor: str, actor_id: int | None = None) -> Adapter:
    """A new adapter row, queued, with an audit row: what the web and ``yuejuan train`` create before the job
    runs (the job records the base model it actually loads)."""
    adapter = Adapter(school_id=school_id, name=new_adapter_name(school_id), status=AdapterStatus.queued,
                      base_model=base_model, rubric_id=rubric_ref, rubric_version=rubric_version, params=params,
                      card={}, losses=[], step=0, total_steps=0, cancel_requested=False, created_by=actor_id)
    session.add(adapter)
    session.flush()
    audit.record(session, "adapter.train", actor=actor, actor_id=actor_id, object_type="adapter",
                 object_id=adapter.id, school_id=school_id, rubric=rubric_ref)
    return adapter
