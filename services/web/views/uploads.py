"""Uploading a class's essays: parse into a server-side preview, then confirm to write all essays at once.

A preview that cannot be stored (full disk) is refused with a message, not a 500; a second 确认导入 of the same
preview (a double click) lands on the assignment page instead of importing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from services.web.access import get_assignment_or_404
from services.web.context import db, settings
from services.web.dispatch import BROKER_DOWN, queue_assignment
from services.web.errors import environment_failure
from services.web.essay_import import (
    ACCEPTED_TYPES,
    ImportRefused,
    existing_essays,
    parse_uploaded_files,
    upload_limits,
    write_essays,
)
from services.web.guards import actor, login_required, user
from services.web.ingest import UploadRejected
from services.web.roster import roster_entries
from services.web.upload_store import (
    StoredPreview,
    claim_confirmation,
    confirmed_assignment,
    discard_preview,
    load_preview,
    release_confirmation,
    save_preview,
)
from shared.audit import file_types
from shared.models import Assignment

logger = logging.getLogger(__name__)

bp = Blueprint("uploads", __name__)

NOT_STORED = {
    507: "服务器磁盘空间不足，上传未保存，请联系管理员。",
    503: "服务器暂时无法保存上传的文件，上传未保存；请稍后重试，如果问题持续请联系管理员。",
}
ALREADY_CONFIRMED = "这次上传已经导入过了，无需再次确认（请勿重复点击“确认导入”）。"
BEING_CONFIRMED = "这次上传正在导入，请勿重复点击“确认导入”；稍后刷新本页即可看到作文。"


def _form(assignment: Assignment, errors: list[str], status: int = 200) -> Any:
    roster_size = len(roster_entries(db(), assignment.classroom))
    return render_template(
        "uploads/form.html", assignment=assignment, classroom=assignment.classroom, errors=errors,
        accepted=",".join(ACCEPTED_TYPES), roster_size=roster_size, max_mb=settings().max_upload_mb,
    ), status


def _stored_or_404(token: str) -> tuple[StoredPreview, Assignment]:
    stored = load_preview(settings().data_dir, token, user_id=user().id)
    if stored is None:
        abort(404, description="这次上传的预览不存在或已过期（预览保留 2 小时），请重新上传。")
    return stored, get_assignment_or_404(db(), user(), stored.assignment_id)


@bp.get("/assignments/<int:assignment_id>/upload")
@login_required
def form(assignment_id: int) -> Any:
    return _form(get_assignment_or_404(db(), user(), assignment_id), [])


@bp.post("/assignments/<int:assignment_id>/upload")
@login_required
def upload(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    files = [(f.filename or "", f.read()) for f in request.files.getlist("files") if f.filename]
    roster = roster_entries(session, assignment.classroom)
    if not roster:
        return _form(assignment, ["本班名单还是空的：请先在班级页面导入名单，再上传作文。"], 400)
    try:
        preview = parse_uploaded_files(files, roster, upload_limits(settings()),
                                       existing_essays(session, assignment.id))
    except UploadRejected as exc:
        actor().record(session, "upload.rejected", object_type="assignment", object_id=assignment.id,
                       files=len(files), file_types=file_types(name for name, _ in files),
                       reason=type(exc).__name__)
        session.commit()
        return _form(assignment, exc.details, 400)
    try:
        stored = save_preview(settings().data_dir, preview, user_id=user().id, assignment_id=assignment.id,
                              filenames=[name for name, _ in files])
    except OSError as exc:
        failure = environment_failure(exc)
        status = failure[0] if failure is not None and failure[0] == 507 else 503
        logger.warning("upload preview for assignment %s not stored: %s", assignment.id, exc)
        actor().record(session, "upload.rejected", object_type="assignment", object_id=assignment.id,
                       files=len(files), file_types=file_types(name for name, _ in files),
                       reason="disk_full" if status == 507 else "storage_error")
        session.commit()
        return _form(assignment, [NOT_STORED[status]], status)
    actor().record(session, "upload.preview", object_type="assignment", object_id=assignment.id,
                   files=len(files), file_types=file_types(name for name, _ in files), essays=len(preview.items),
                   problems=len(preview.problems), ok=preview.ok,
                   invisible_removed=sum(len(item.removed) for item in preview.items))
    session.commit()
    return redirect(url_for("uploads.preview", token=stored.token), 303)


@bp.get("/uploads/<token>")
@login_required
def preview(token: str) -> Any:
    stored, assignment = _stored_or_404(token)
    existing = existing_essays(db(), assignment.id)
    clashes = {item.student_id for item in stored.items if item.student_id in existing}
    return render_template("uploads/preview.html", stored=stored, assignment=assignment,
                           classroom=assignment.classroom, clashes=clashes)


@bp.post("/uploads/<token>/confirm")
@login_required
def confirm(token: str) -> Any:
    session = db()
    data_dir = settings().data_dir
    stored = load_preview(data_dir, token, user_id=user().id)
    if stored is None:  # gone: expired, discarded, or already imported by an earlier click
        assignment_id = confirmed_assignment(data_dir, token, user_id=user().id)
        if assignment_id is None:
            abort(404, description="这次上传的预览不存在或已过期（预览保留 2 小时），请重新上传。")
        flash(ALREADY_CONFIRMED, "ok")
        return redirect(url_for("assignments.show", assignment_id=get_assignment_or_404(
            session, user(), assignment_id).id), 303)
    assignment = get_assignment_or_404(session, user(), stored.assignment_id)
    if not claim_confirmation(data_dir, stored):  # another click of this preview is importing it right now
        flash(BEING_CONFIRMED, "ok")
        return redirect(url_for("assignments.show", assignment_id=assignment.id), 303)
    try:
        essay_ids = write_essays(session, actor(), assignment, stored, replace=request.form.get("replace") == "1")
        session.commit()
    except (ImportRefused, IntegrityError) as exc:
        session.rollback()
        release_confirmation(data_dir, token)
        # IntegrityError: another upload wrote essays for these students at the same moment (SQLite).
        message = exc.message if isinstance(exc, ImportRefused) else (
            "本次作业刚刚已有其他导入写入了这些学生的作文，未导入任何作文。请刷新后查看。")
        flash(message, "error")
        return redirect(url_for("uploads.preview", token=token), 303)
    except BaseException:
        session.rollback()
        release_confirmation(data_dir, token)
        raise
    discard_preview(data_dir, token)
    if queue_assignment(assignment.id):
        flash(f"已导入 {len(essay_ids)} 篇作文，已开始排队评分。", "ok")
    else:
        flash(f"已导入 {len(essay_ids)} 篇作文。" + BROKER_DOWN, "error")
    return redirect(url_for("assignments.show", assignment_id=assignment.id), 303)


@bp.post("/uploads/<token>/discard")
@login_required
def discard(token: str) -> Any:
    stored, assignment = _stored_or_404(token)
    discard_preview(settings().data_dir, stored.token)
    flash("已放弃这次上传，没有导入任何作文。", "ok")
    return redirect(url_for("uploads.form", assignment_id=assignment.id), 303)
