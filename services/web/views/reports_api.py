"""Report endpoints of the JSON API (bearer token): list a class's or an assignment's class workbook jobs, request
one, read a job, download its workbook; school administrators list and request their school's workbooks.

The same rules as the pages: a class report follows its class's scope, a school report needs the school's admin
(or a sysadmin); requests and downloads are audited; a failure reads as its category, with the detail for admins.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, url_for
from sqlalchemy import select

from services.web.access import (
    get_assignment_or_404,
    get_classroom_or_404,
    get_report_job_or_404,
    get_school_or_404,
    is_admin,
)
from services.web.api_auth import authenticate
from services.web.context import db
from services.web.guards import user
from services.web.times import api_time
from services.web.views.reports import (
    job_line,
    report_file,
    request_class_workbook,
    request_school_workbook,
    send_report,
)
from shared.models import ReportJob
from shared.report_jobs import recent_class_jobs, recent_school_jobs
from shared.tasks import ReportKind

bp = Blueprint("reports_api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)

LISTED = 50  # newest jobs in a list


def job_json(job: ReportJob) -> dict[str, Any]:
    line = job_line(job, with_detail=is_admin(user()))
    ready = report_file(job) is not None
    return {
        "id": job.id, "kind": job.kind, "status": str(job.status), "status_name": line.status,
        "problem": line.problem, **({"detail": line.detail} if is_admin(user()) else {}),
        "school_id": job.school_id, "classroom_id": job.classroom_id, "assignment_id": job.assignment_id,
        "created_at": api_time(job.created_at), "finished_at": api_time(job.finished_at), "ready": ready,
        "download_url": url_for("reports_api.download", job_id=job.id) if ready else None,
    }


def _jobs(jobs: list[ReportJob]) -> Any:
    return jsonify({"reports": [job_json(job) for job in jobs]})


@bp.get("/assignments/<int:assignment_id>/reports")
def assignment_reports(assignment_id: int) -> Any:
    assignment = get_assignment_or_404(db(), user(), assignment_id)
    return _jobs(recent_class_jobs(db(), assignment.id, limit=LISTED))


@bp.post("/assignments/<int:assignment_id>/reports")
def request_assignment_report(assignment_id: int) -> Any:
    """Queue a class workbook: 202 with the job (poll it; ``download_url`` appears when it is written), or 503 with
    the job failed when the task queue cannot be reached."""
    assignment = get_assignment_or_404(db(), user(), assignment_id)
    job, sent = request_class_workbook(assignment)
    db().refresh(job)
    if not sent:
        return jsonify(error="暂时无法连接任务队列，请稍后重试。", status=503, report=job_json(job)), 503
    return jsonify(job_json(job)), 202


@bp.get("/classes/<int:classroom_id>/reports")
def class_reports(classroom_id: int) -> Any:
    classroom = get_classroom_or_404(db(), user(), classroom_id)
    jobs = db().scalars(
        select(ReportJob).where(ReportJob.classroom_id == classroom.id, ReportJob.kind == ReportKind.class_workbook)
        .order_by(ReportJob.created_at.desc(), ReportJob.id.desc()).limit(LISTED)
    ).all()
    return _jobs(list(jobs))


@bp.get("/schools/<int:school_id>/reports")
def school_reports(school_id: int) -> Any:
    school = _administered_school(school_id)
    return _jobs(recent_school_jobs(db(), school.id, limit=LISTED))


@bp.post("/schools/<int:school_id>/reports")
def request_school_report(school_id: int) -> Any:
    job, sent = request_school_workbook(_administered_school(school_id))
    db().refresh(job)
    if not sent:
        return jsonify(error="暂时无法连接任务队列，请稍后重试。", status=503, report=job_json(job)), 503
    return jsonify(job_json(job)), 202


@bp.get("/reports/<int:job_id>")
def report(job_id: int) -> Any:
    return jsonify(job_json(get_report_job_or_404(db(), user(), job_id)))


@bp.get("/reports/<int:job_id>/download")
def download(job_id: int) -> Any:
    return send_report(get_report_job_or_404(db(), user(), job_id))


def _administered_school(school_id: int) -> Any:
    if not is_admin(user()):
        abort(404)
    return get_school_or_404(db(), user(), school_id)
