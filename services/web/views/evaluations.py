"""模型评测 for school admins: start ``yuejuan eval`` on the school's teacher-final grades (the whole school or one
assignment) as a job on the gpu queue, follow its progress, read the figures and download eval.xlsx."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from services.web.access import classroom_scope, get_assignment_or_404, get_school_or_404, is_admin, visible_schools
from services.web.context import db, settings, task_sender
from services.web.guards import actor, admin_required, user
from services.web.numbers import ascii_int
from shared.models import Assignment, Classroom, EvalJob, JobStatus, Role
from shared.prompts.rubric import list_rubrics
from shared.queueing import LOWEST_PRIORITY
from shared.storage import OutsideDataDir, stored_path
from shared.tasks import EVAL_TASK

logger = logging.getLogger(__name__)

bp = Blueprint("evaluations", __name__)

STATUS_NAMES = {"queued": "排队中", "running": "评测中", "done": "已完成", "failed": "失败"}
WORKBOOK = "eval.xlsx"
MAX_ESSAYS = 2000


def _job_or_404(job_id: int) -> EvalJob:
    job = db().get(EvalJob, job_id)
    if job is None:
        abort(404)
    get_school_or_404(db(), user(), job.school_id)
    return job


def _workbook(job: EvalJob) -> Path | None:
    if job.status != JobStatus.done or not job.directory:
        return None
    try:
        path = stored_path(settings().data_dir, Path(job.directory) / WORKBOOK)
    except OutsideDataDir:
        logger.warning("evaluation job %s names a directory outside the data directory; not served", job.id)
        return None
    return path if path.is_file() else None


def progress_of(job: EvalJob) -> dict[str, Any]:
    percent = int(100 * job.done / job.total) if job.total else (100 if job.status == JobStatus.done else 0)
    return {"id": job.id, "status": str(job.status), "status_name": STATUS_NAMES.get(job.status, str(job.status)),
            "done": job.done, "total": job.total, "essays": job.essays, "percent": percent,
            "finished": job.status in (JobStatus.done, JobStatus.failed), "error": job.error}


@bp.get("/admin/evaluations")
@admin_required
def index() -> Any:
    session = db()
    schools = session.scalars(visible_schools(user())).all()
    school_ids = [school.id for school in schools]
    jobs = session.scalars(select(EvalJob).where(EvalJob.school_id.in_(school_ids))
                           .order_by(EvalJob.id.desc()).limit(50)).all()
    assignments = session.scalars(
        select(Assignment).join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(classroom_scope(user())).order_by(Assignment.id.desc()).limit(200)
    ).all()
    return render_template("evaluations/index.html", schools=schools, jobs=jobs, assignments=assignments,
                           names={school.id: school.name for school in schools},
                           rubrics={info.id: info for info in list_rubrics()},
                           status_names=STATUS_NAMES, max_essays=MAX_ESSAYS)


@bp.post("/admin/evaluations")
@admin_required
def start() -> Any:
    session = db()
    account = user()
    form = request.form
    assignment_raw, limit_raw = form.get("assignment_id", "").strip(), form.get("limit", "").strip()
    if assignment_raw:
        assignment_id = ascii_int(assignment_raw, minimum=1)
        if assignment_id is None:
            abort(404)
        assignment = get_assignment_or_404(session, account, assignment_id)
        school_id, rubric_ref = assignment.classroom.school_id, assignment.rubric_id
    else:
        assignment = None
        school_id = ascii_int(form.get("school_id", ""), minimum=1) or account.school_id
        if school_id is None or not is_admin(account):
            abort(404)
        get_school_or_404(session, account, school_id)
        rubric_ref = form.get("rubric", "gaokao-national")
        if rubric_ref not in {info.id for info in list_rubrics()}:
            flash("请选择一个评分标准。", "error")
            return redirect(url_for("evaluations.index"), 303)
    limit = ascii_int(limit_raw, minimum=1, maximum=MAX_ESSAYS) if limit_raw else None
    if limit_raw and limit is None:
        flash(f"最多评测篇数应为 1 到 {MAX_ESSAYS} 之间的整数。", "error")
        return redirect(url_for("evaluations.index"), 303)
    job = EvalJob(school_id=school_id, assignment_id=assignment.id if assignment else None, requested_by=account.id,
                  rubric_ref=rubric_ref, essay_limit=limit)
    session.add(job)
    session.flush()
    actor().record(session, "eval.request", object_type="evaluation", object_id=job.id, school_id=school_id,
                   assignment_id=job.assignment_id)
    session.commit()
    try:  # last in the gpu queue: the classes waiting to be graded go first
        task_sender().send_task(EVAL_TASK, args=[job.id], priority=LOWEST_PRIORITY)
    except Exception:
        logger.exception("could not send evaluation job %s", job.id)
        job.status, job.error = JobStatus.failed, "暂时无法连接任务队列，请稍后重新发起评测。"
        session.commit()
        flash(job.error, "error")
        return redirect(url_for("evaluations.show", job_id=job.id), 303)
    flash("评测已排队：班级的评分任务优先，空闲时开始评测。", "ok")
    return redirect(url_for("evaluations.show", job_id=job.id), 303)


@bp.get("/admin/evaluations/<int:job_id>")
@admin_required
def show(job_id: int) -> Any:
    job = _job_or_404(job_id)
    assignment = db().get(Assignment, job.assignment_id) if job.assignment_id else None
    return render_template("evaluations/show.html", job=job, assignment=assignment, progress=progress_of(job),
                           workbook=_workbook(job) is not None, headline=job.headline or {},
                           sysadmin=user().role == Role.sysadmin)


@bp.get("/admin/evaluations/<int:job_id>/progress.json")
@admin_required
def progress(job_id: int) -> Any:
    return jsonify(progress_of(_job_or_404(job_id)))


@bp.get("/admin/evaluations/<int:job_id>/download")
@admin_required
def download(job_id: int) -> Any:
    job = _job_or_404(job_id)
    path = _workbook(job)
    if path is None:
        abort(404, description="评测尚未完成，或文件已不存在。")
    actor().record(db(), "eval.download", object_type="evaluation", object_id=job.id)
    db().commit()
    return send_file(path, as_attachment=True, download_name=f"模型评测-{job.id}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
