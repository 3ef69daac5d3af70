"""Uploading a class's essays: parse into a server-side preview, then confirm to write all essays at once."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from services.web.access import get_assignment_or_404
from services.web.auth import actor, login_required, user
from services.web.context import db, settings
from services.web.dispatch import BROKER_DOWN, queue_assignment
from services.web.essay_import import (
    ACCEPTED_TYPES,
    ImportRefused,
    existing_essays,
    parse_uploaded_files,
    upload_limits,
    write_essays,
)
from services.web.ingest import UploadRejected
from services.web.roster import roster_entries
from services.web.upload_store import StoredPreview, discard_preview, load_preview, save_preview
from shared.audit import file_types
from shared.models import Assignment

logger = logging.getLogger(__name__)

bp = Blueprint("uploads", __name__)


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
        preview = parse_uploaded_files(files, roster, upload_limits(settings()))
    except UploadRejected as exc:
        actor().record(session, "upload.rejected", object_type="assignment", object_id=assignment.id,
                       files=len(files), file_types=file_types(name for name, _ in files),
                       reason=type(exc).__name__)
        session.commit()
        return _form(assignment, exc.details, 400)
    stored = save_preview(settings().data_dir, preview, user_id=user().id, assignment_id=assignment.id,
                          filenames=[name for name, _ in files])
    actor().record(session, "upload.preview", object_type="assignment", object_id=assignment.id,
                   files=len(files), file_types=file_types(name for name, _ in files), essays=len(preview.items),
                   problems=len(preview.problems), ok=preview.ok)
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
    stored, assignment = _stored_or_404(token)
    try:
        essay_ids = write_essays(session, actor(), assignment, stored, replace=request.form.get("replace") == "1")
    except ImportRefused as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("uploads.preview", token=token), 303)
    session.commit()
    discard_preview(settings().data_dir, token)
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
