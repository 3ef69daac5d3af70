"""Grading progress and worker health as plain data for the progress page, its JSON poll and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import WorkerStatus
from shared.models.base import utcnow
from shared.progress import assignment_progress
from shared.worker_health import WorkerHealth, classify_workers, service_notice


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def worker_health(session: Session, *, lost_after_s: float, now: datetime | None = None) -> list[WorkerHealth]:
    rows = session.scalars(select(WorkerStatus).order_by(WorkerStatus.id)).all()
    return classify_workers(rows, now or utcnow(), lost_after_s=lost_after_s)


def workers_view(
    session: Session, *, admin: bool, lost_after_s: float, now: datetime | None = None
) -> dict[str, Any]:
    """What a viewer sees of the workers: teachers the live ones and those gone for under 10 minutes, by process
    name only (no host name, model path or device), and a current fault as one line; admins every row in full
    with the fault's detail."""
    health = worker_health(session, lost_after_s=lost_after_s, now=now)
    shown = [w for w in health if admin or w.shown_to_teachers]
    return {
        "notice": service_notice(health),
        "workers": [
            {
                "id": w.id if admin else w.id.partition("@")[0], "queues": ",".join(w.queues), "state": w.state,
                "state_name": w.state_name, "updated_at": _iso(w.updated_at), "live": w.live,
                "failed": w.current_fault,
                **({"model": w.model, "device": w.device, "detail": w.detail} if admin else {}),
            }
            for w in shown
        ],
    }


def progress_json(session: Session, assignment_id: int, *, admin: bool, lost_after_s: float) -> dict[str, Any]:
    progress = assignment_progress(session, assignment_id)
    rate = progress.essays_per_minute
    view = workers_view(session, admin=admin, lost_after_s=lost_after_s)
    return {
        "assignment_id": assignment_id, "total": progress.total, "queued": progress.queued,
        "grading": progress.grading, "graded": progress.graded, "failed": progress.failed, "done": progress.done,
        "percent": progress.percent, "finished": progress.finished,
        "essays_per_minute": round(rate, 2) if rate is not None else None, "eta_seconds": progress.eta_seconds,
        "workers": view["workers"], "worker_notice": view["notice"],
    }
