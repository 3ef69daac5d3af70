"""Grading progress and worker health as plain data for the progress page, its JSON poll and the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.web.times import api_time
from shared.models import WorkerStatus
from shared.models.base import utcnow
from shared.progress import assignment_progress
from shared.report_jobs import recent_class_jobs
from shared.worker_health import WorkerHealth, classify_workers, service_notice


def _iso(moment: datetime | None) -> str | None:
    return api_time(moment)


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


WORKBOOK_STATUS_NAMES = {"queued": "排队中", "running": "生成中", "done": "已完成", "failed": "失败"}


def class_workbook_json(
    session: Session, assignment_id: int, download_url: Callable[[int], str]
) -> dict[str, Any] | None:
    """The assignment's class workbook as the progress page shows it (made by itself when grading finishes): the
    newest job's state, and the link to the newest written file — which stays offered while a newer job (the one
    that adds the training plans) is still being built; None before there is a job."""
    jobs = recent_class_jobs(session, assignment_id, limit=10)
    if not jobs:
        return None
    latest = jobs[0]
    written = next((job for job in jobs if job.status == "done" and job.file_path), None)
    return {
        "job_id": latest.id, "status": str(latest.status),
        "status_name": WORKBOOK_STATUS_NAMES.get(latest.status, latest.status),
        "ready": written is not None, "download_url": download_url(written.id) if written is not None else None,
        "updating": written is not None and written is not latest and latest.status in ("queued", "running"),
    }


def progress_json(
    session: Session, assignment_id: int, *, admin: bool, lost_after_s: float,
    download_url: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """Counts, rate and ETA, the workers, and (with ``download_url``) the class workbook's state and link."""
    progress = assignment_progress(session, assignment_id)
    rate = progress.essays_per_minute
    view = workers_view(session, admin=admin, lost_after_s=lost_after_s)
    return {
        "assignment_id": assignment_id, "total": progress.total, "queued": progress.queued,
        "grading": progress.grading, "graded": progress.graded, "failed": progress.failed, "done": progress.done,
        "percent": progress.percent, "finished": progress.finished,
        "essays_per_minute": round(rate, 2) if rate is not None else None, "eta_seconds": progress.eta_seconds,
        "ahead": progress.ahead, "workers": view["workers"], "worker_notice": view["notice"],
        **({"workbook": class_workbook_json(session, assignment_id, download_url)} if download_url else {}),
    }
