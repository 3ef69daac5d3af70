"""Excel workbooks: request a class or school workbook (sent to the reports queue by name), retry, download.

A job's failure is shown as its category in one line (「磁盘空间不足」); administrators also see the technical
detail, which may name server paths.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for

from services.web.access import (
    get_assignment_or_404,
    get_report_job_or_404,
    get_school_or_404,
    is_admin,
    visible_schools,
)
from services.web.context import db, settings
from services.web.dispatch import send_report_task
from services.web.filenames import safe_download_name
from services.web.guards import actor, admin_required, login_required, user
from services.web.numbers import ascii_int
from shared.models import Assignment, JobStatus, ReportJob, Role, School
from shared.report_jobs import (
    create_class_job,
    fail_unsent,
    parse_error,
    recent_class_jobs,
    recent_school_jobs,
    requeue_failed,
)
from shared.storage import OutsideDataDir, stored_path
from shared.tasks import CLASS_WORKBOOK_TASK, SCHOOL_WORKBOOK_TASK, TASK_FOR_KIND, ReportKind

logger = logging.getLogger(__name__)

bp = Blueprint("reports", __name__)

CLASS_WORKBOOK, SCHOOL_WORKBOOK = ReportKind.class_workbook, ReportKind.school_workbook
JOB_STATUS_NAMES = {"queued": "排队中", "running": "生成中", "done": "已完成", "failed": "失败"}
TASKS = TASK_FOR_KIND


@dataclass(frozen=True)
class JobLine:
    """How one job reads on a page: its state, the category of its failure, the detail (admins only)."""

    status: str
    problem: str | None
    detail: str | None
    retryable: bool


def job_line(job: ReportJob, *, with_detail: bool) -> JobLine:
    error = parse_error(job.error)
    status, problem = JOB_STATUS_NAMES.get(job.status, str(job.status)), None
    if error is not None and job.status == JobStatus.failed:
        problem = error.label
    elif error is not None and error.retrying and job.status == JobStatus.queued:
        status, problem = "重试中", f"{error.label}，将自动重试（第 {error.retry}/{error.max_retries} 次）"
    elif error is not None and error.retrying and job.status == JobStatus.running:
        status = f"生成中（第 {error.retry} 次重试）"
    detail = error.detail if error is not None and with_detail and job.status != JobStatus.done else None
    return JobLine(status, problem, detail or None, job.status == JobStatus.failed)


def send_or_fail(task: str, job: ReportJob) -> bool:
    """Send the job's task; when the broker is away the job is marked failed, so 重新生成 can send it later."""
    if send_report_task(task, job.id):
        return True
    session = db()
    fail_unsent(session, job.id, f"could not send {task} to the broker")
    session.commit()
    return False


def job_lines(jobs: list[ReportJob]) -> dict[int, JobLine]:
    with_detail = is_admin(user())
    return {job.id: job_line(job, with_detail=with_detail) for job in jobs}


def report_file(job: ReportJob) -> Path | None:
    """The finished workbook on disk (a relative path is taken relative to data_dir)."""
    if job.status != JobStatus.done or not job.file_path:
        return None
    try:
        path = stored_path(settings().data_dir, job.file_path)
    except OutsideDataDir:
        logger.warning("report job %s names a file outside the data directory; not served", job.id)
        return None
    return path if path.is_file() else None


def request_class_workbook(assignment: Assignment) -> tuple[ReportJob, bool]:
    session = db()
    job = create_class_job(session, assignment.id, requested_by=user().id)
    if job is None:  # deleted since it was loaded
        abort(404)
    actor().record(session, "report.request", object_type="report", object_id=job.id, kind=CLASS_WORKBOOK,
                   assignment_id=assignment.id)
    session.commit()
    return job, send_or_fail(CLASS_WORKBOOK_TASK, job)


@bp.get("/assignments/<int:assignment_id>/report")
@login_required
def class_report(assignment_id: int) -> Any:
    assignment = get_assignment_or_404(db(), user(), assignment_id)
    jobs = recent_class_jobs(db(), assignment.id)
    ready = {job.id for job in jobs if report_file(job) is not None}
    return render_template("reports/class.html", assignment=assignment, classroom=assignment.classroom, jobs=jobs,
                           ready=ready, lines=job_lines(jobs))


@bp.post("/assignments/<int:assignment_id>/report")
@login_required
def request_class_report(assignment_id: int) -> Any:
    assignment = get_assignment_or_404(db(), user(), assignment_id)
    _job, sent = request_class_workbook(assignment)
    flash("已提交生成请求，请稍候刷新本页。" if sent else "暂时无法连接任务队列，请稍后点击“重新生成”。",
          "ok" if sent else "error")
    return redirect(url_for("reports.class_report", assignment_id=assignment.id), 303)


@bp.post("/reports/<int:job_id>/retry")
@login_required
def retry(job_id: int) -> Any:
    """重新生成: a failed job goes back to queued and its task is sent again (with a fresh retry budget)."""
    session = db()
    job = get_report_job_or_404(session, user(), job_id)
    back = (url_for("reports.class_report", assignment_id=job.assignment_id) if job.assignment_id is not None
            else url_for("reports.school_reports"))
    task = TASKS.get(job.kind)
    if task is None or not requeue_failed(session, job.id):
        session.rollback()
        flash("这份报表没有失败，无需重新生成。", "error")
        return redirect(back, 303)
    actor().record(session, "report.retry", object_type="report", object_id=job.id, kind=job.kind)
    session.commit()
    sent = send_or_fail(task, job)
    flash("已重新提交生成请求，请稍候刷新本页。" if sent else "暂时无法连接任务队列，请稍后再点击“重新生成”。",
          "ok" if sent else "error")
    return redirect(back, 303)


@bp.get("/reports/<int:job_id>/download")
@login_required
def download(job_id: int) -> Any:
    return send_report(get_report_job_or_404(db(), user(), job_id))


def send_report(job: ReportJob) -> Any:
    """The job's workbook as a download, audited (the page and the API); 404 while it is not written."""
    session = db()
    path = report_file(job)
    if path is None:
        abort(404, description="报表尚未生成完成，或文件已不存在。")
    actor().record(session, "report.download", object_type="report", object_id=job.id, kind=job.kind)
    session.commit()
    return send_file(path, as_attachment=True, download_name=safe_download_name(_download_name(job, path)),
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _download_name(job: ReportJob, path: Path) -> str:
    session = db()
    if job.assignment_id is not None:
        assignment = session.get(Assignment, job.assignment_id)
        if assignment is not None:
            return f"{assignment.classroom.name}-{assignment.title}-成绩.xlsx"
    if job.school_id is not None:
        school = session.get(School, job.school_id)
        if school is not None:
            return f"{school.name}-全校报表-{job.id}.xlsx"
    return path.name


def request_school_workbook(school: School) -> tuple[ReportJob, bool]:
    """A school workbook job for a school the caller administers, audited and sent; (job, sent)."""
    session = db()
    job = ReportJob(kind=SCHOOL_WORKBOOK, school_id=school.id, requested_by=user().id)
    session.add(job)
    session.flush()
    actor().record(session, "report.request", object_type="report", object_id=job.id, kind=SCHOOL_WORKBOOK,
                   school_id=school.id)
    session.commit()
    return job, send_or_fail(SCHOOL_WORKBOOK_TASK, job)


@bp.get("/admin/reports")
@admin_required
def school_reports() -> Any:
    session = db()
    schools = session.scalars(visible_schools(user())).all()
    jobs = recent_school_jobs(session, None if user().role == Role.sysadmin else user().school_id)
    names = {school.id: school.name for school in schools}
    ready = {job.id for job in jobs if report_file(job) is not None}
    return render_template("reports/school.html", schools=schools, jobs=jobs, names=names, ready=ready,
                           lines=job_lines(list(jobs)))


@bp.post("/admin/reports")
@admin_required
def request_school_report() -> Any:
    session = db()
    account = user()
    raw = request.form.get("school_id", "")
    school_id = ascii_int(raw) or account.school_id
    if school_id is None or not is_admin(account):
        abort(404)
    school = get_school_or_404(session, account, school_id)
    _job, sent = request_school_workbook(school)
    flash(f"已提交“{school.name}”全校报表的生成请求。" if sent else "暂时无法连接任务队列，请稍后点击“重新生成”。",
          "ok" if sent else "error")
    return redirect(url_for("reports.school_reports"), 303)
