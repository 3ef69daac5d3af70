"""Grading progress and worker health as plain data for the progress page, its JSON poll and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import WorkerStatus
from shared.progress import assignment_progress

WORKER_STATES = {"loading": "正在加载模型", "ready": "就绪", "failed": "模型加载失败", "stopped": "已停止"}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def workers(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(WorkerStatus).order_by(WorkerStatus.id)).all()
    return [
        {
            "id": row.id, "queues": row.queues, "state": row.state,
            "state_name": WORKER_STATES.get(row.state, row.state), "model": row.model, "device": row.device,
            "detail": row.detail, "updated_at": _iso(row.updated_at), "failed": row.state == "failed",
        }
        for row in rows
    ]


def progress_json(session: Session, assignment_id: int) -> dict[str, Any]:
    progress = assignment_progress(session, assignment_id)
    rate = progress.essays_per_minute
    return {
        "assignment_id": assignment_id, "total": progress.total, "queued": progress.queued,
        "grading": progress.grading, "graded": progress.graded, "failed": progress.failed, "done": progress.done,
        "percent": progress.percent, "finished": progress.finished,
        "essays_per_minute": round(rate, 2) if rate is not None else None, "eta_seconds": progress.eta_seconds,
        "workers": workers(session),
    }
