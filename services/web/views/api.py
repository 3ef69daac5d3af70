"""JSON API under /api/v1 (bearer tokens): the same access checks and services as the pages."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.web.access import (
    get_assignment_or_404,
    get_classroom_or_404,
    get_essay_or_404,
    is_admin,
    visible_classrooms,
)
from services.web.api_auth import authenticate
from services.web.context import db, settings
from services.web.dispatch import queue_assignment, queue_essays
from services.web.double_marking import blind_essay_ids, parse_mode, set_mode
from services.web.essay_import import ImportRefused, existing_essays, parse_uploaded_files, upload_limits, write_essays
from services.web.essay_view import build_essay_view, essay_json
from services.web.forms import validate_assignment, validate_class
from services.web.guards import actor, user
from services.web.ingest import UploadRejected
from services.web.numbers import ascii_int
from services.web.openapi import openapi_document
from services.web.progress_view import progress_json
from services.web.records import DuplicateName, class_counts, class_page, create_assignment, create_classroom
from services.web.results import class_results
from services.web.review import ReviewError, override_grade, parse_scores, requeue
from services.web.roster import import_roster, read_roster_file, roster_entries
from services.web.rubric_store import rubric_choices
from services.web.times import api_time
from services.web.upload_store import StoredPreview, discard_preview, load_preview, save_preview
from services.web.views.assignments import rubric_or_none
from shared.audit import file_types
from shared.models import Assignment, Classroom

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="请求体必须是 JSON 对象。")
    return data


def _invalid(errors: list[str], status: int = 400) -> Any:
    return jsonify(error="；".join(errors), details=errors, status=status), status


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def _classroom_json(classroom: Classroom, *, detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": classroom.id, "name": classroom.name, "school_id": classroom.school_id,
        "teacher_id": classroom.teacher_id, "teacher_name": classroom.teacher.display_name,
    }
    if detail:
        page = class_page(db(), classroom)
        data["students"] = [{"id": s.id, "name": s.name, "student_number": s.student_number} for s in page.students]
        data["assignments"] = [_assignment_json(a) for a in sorted(page.assignments, key=lambda a: a.id)]
    return data


def _assignment_json(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.id, "classroom_id": assignment.classroom_id, "title": assignment.title,
        "prompt_text": assignment.prompt_text, "genre": assignment.genre, "rubric_id": assignment.rubric_id,
        "rubric_version": assignment.rubric_version, "required_length": assignment.required_length,
        "created_at": api_time(assignment.created_at), "double_marking": assignment.double_marking,
        "double_marking_share": assignment.double_marking_share,
    }


def _preview_json(stored: StoredPreview, existing: dict[int, int]) -> dict[str, Any]:
    return {
        "token": stored.token, "ok": stored.ok, "confirmed": False, "files": stored.filenames,
        "items": [
            {"source": i.source, "student_id": i.student_id, "student_name": i.student_name, "title": i.title,
             "char_count": i.char_count, "problems": i.problems, "removed": i.removed,
             "existing_essay_id": existing.get(i.student_id or -1)}
            for i in stored.items
        ],
        "problems": stored.problems, "missing": stored.missing,
    }


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


@bp.get("/me")
def me() -> Any:
    account = user()
    return jsonify(id=account.id, username=account.username, display_name=account.display_name,
                   role=str(account.role), school_id=account.school_id)


@bp.get("/rubrics")
def rubrics() -> Any:
    raw = request.args.get("classroom_id", "")
    school_id = user().school_id
    classroom_id = ascii_int(raw)
    if classroom_id is not None:
        school_id = get_classroom_or_404(db(), user(), classroom_id).school_id
    return jsonify(rubrics=[
        {"key": c.key, "label": c.label, "rubric_version": c.rubric_version, "required_length": c.required_length,
         "own": c.own}
        for c in rubric_choices(settings().data_dir, school_id)
    ])


@bp.get("/classes")
def list_classes() -> Any:
    session = db()
    classrooms = session.scalars(visible_classrooms(user())).all()
    counts, _assignments = class_counts(session, [c.id for c in classrooms])
    return jsonify(classes=[{**_classroom_json(c), "students": counts.get(c.id, 0)} for c in classrooms])


@bp.post("/classes")
def create_class() -> Any:
    session = db()
    data, errors = validate_class(session, user(), _body())
    if data is None:
        return _invalid(errors)
    try:
        classroom = create_classroom(session, actor(), data)
    except DuplicateName as exc:
        return _invalid([str(exc)], 409)
    session.commit()
    return jsonify(_classroom_json(classroom, detail=True)), 201


@bp.get("/classes/<int:classroom_id>")
def get_class(classroom_id: int) -> Any:
    return jsonify(_classroom_json(get_classroom_or_404(db(), user(), classroom_id), detail=True))


@bp.post("/classes/<int:classroom_id>/roster")
def import_class_roster(classroom_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _invalid(["请以 multipart 字段 file 上传名单文件（.xlsx 或 .csv）。"])
    try:
        rows = read_roster_file(upload.filename, upload.read(), upload_limits(settings()))
    except UploadRejected as exc:
        return _invalid(exc.details)
    result = import_roster(session, actor(), classroom, rows, filename=upload.filename)
    session.commit()
    return jsonify(added=result.added, skipped=result.skipped, classroom=_classroom_json(classroom, detail=True))


@bp.post("/classes/<int:classroom_id>/assignments")
def create_class_assignment(classroom_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    body = _body()
    data, errors = validate_assignment(body, rubric_choices(settings().data_dir, classroom.school_id))
    try:
        marking = parse_mode(body.get("double_marking"), body.get("double_marking_share"))
    except ReviewError as exc:
        data, errors = None, [*errors, str(exc)]
    if data is None:
        return _invalid(errors)
    assignment = create_assignment(session, actor(), classroom, data)
    if marking[0] != "off":
        set_mode(session, actor(), assignment, *marking)
    session.commit()
    return jsonify(_assignment_json(assignment)), 201


def _progress(session: Session, assignment_id: int) -> dict[str, Any]:
    return progress_json(session, assignment_id, admin=is_admin(user()), lost_after_s=settings().worker_lost_after_s,
                         download_url=_workbook_url)


def _workbook_url(job_id: int) -> str:
    return url_for("reports_api.download", job_id=job_id)


@bp.get("/assignments/<int:assignment_id>")
def get_assignment(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    return jsonify({**_assignment_json(assignment), "progress": _progress(session, assignment.id)})


def _confirm(stored: StoredPreview, assignment: Assignment) -> Any:
    session = db()
    try:
        essay_ids = write_essays(session, actor(), assignment, stored, replace=_flag("replace"))
    except ImportRefused as exc:
        session.rollback()
        return jsonify(error=exc.message, status=409, confirmed=False), 409
    session.commit()
    discard_preview(settings().data_dir, stored.token)
    queued = queue_assignment(assignment.id)
    return jsonify(confirmed=True, essay_ids=essay_ids, queued=queued), 201


@bp.post("/assignments/<int:assignment_id>/essays")
def upload_essays(assignment_id: int) -> Any:
    """Preview an upload (stored for the confirm call), or with ?confirm=1 write it at once when it has no problems."""
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    files = [(f.filename or "", f.read()) for f in request.files.getlist("files") + request.files.getlist("file")]
    roster = roster_entries(session, assignment.classroom)
    if not roster:
        return _invalid(["本班名单为空：请先导入名单。"], 409)
    try:
        preview = parse_uploaded_files(files, roster, upload_limits(settings()),
                                       existing_essays(session, assignment.id))
    except UploadRejected as exc:
        return _invalid(exc.details)
    stored = save_preview(settings().data_dir, preview, user_id=user().id, assignment_id=assignment.id,
                          filenames=[name for name, _ in files if name])
    actor().record(session, "upload.preview", object_type="assignment", object_id=assignment.id,
                   files=len(files), file_types=file_types(name for name, _ in files if name),
                   essays=len(preview.items), problems=len(preview.problems), ok=preview.ok, api=True)
    session.commit()
    if not _flag("confirm"):
        return jsonify(_preview_json(stored, existing_essays(session, assignment.id)))
    if not stored.ok:
        discard_preview(settings().data_dir, stored.token)
        body = _preview_json(stored, existing_essays(session, assignment.id))
        return jsonify({**body, "token": None, "error": "上传内容有问题，未导入任何作文。"}), 422
    return _confirm(stored, assignment)


@bp.post("/uploads/<token>/confirm")
def confirm_upload(token: str) -> Any:
    stored = load_preview(settings().data_dir, token, user_id=user().id)
    if stored is None:
        abort(404, description="预览不存在或已过期，请重新上传。")
    return _confirm(stored, get_assignment_or_404(db(), user(), stored.assignment_id))


@bp.get("/assignments/<int:assignment_id>/progress")
def progress(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    return jsonify(_progress(session, assignment.id))


@bp.get("/assignments/<int:assignment_id>/results")
def results(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    rubric = rubric_or_none(assignment)
    table = class_results(session, assignment, rubric, sort=request.args.get("sort", "number"),
                          direction=request.args.get("dir", "asc"), blind=blind_essay_ids(session, user(), assignment))
    return jsonify(
        assignment_id=assignment.id, rubric_total=table.rubric_total, sort=table.sort, direction=table.direction,
        dimensions=[{"key": c.key, "name": c.name, "max": c.max} for c in table.columns],
        rows=[row.as_json() for row in table.rows],
    )


@bp.get("/essays/<int:essay_id>")
def essay(essay_id: int) -> Any:
    session = db()
    found = get_essay_or_404(session, user(), essay_id)
    view = build_essay_view(session, found, rubric_or_none(found.assignment))
    actor().record(session, "essay.view", object_type="essay", object_id=found.id, api=True)
    session.commit()
    body = essay_json(view)
    if found.id in blind_essay_ids(session, user(), found.assignment):  # 双评 is blind until the second reading
        body.update(grade=None, history=[], awaiting_second_read=True)
    return jsonify(body)


@bp.post("/essays/<int:essay_id>/override")
def override(essay_id: int) -> Any:
    session = db()
    found = get_essay_or_404(session, user(), essay_id)
    body = _body()
    rubric = rubric_or_none(found.assignment)
    if rubric is None:
        return _invalid(["评分标准无法加载，暂时不能改分。"], 409)
    scores_in = body.get("scores")
    comment = body.get("comment")
    if not isinstance(scores_in, dict) or (comment is not None and not isinstance(comment, str)):
        return _invalid(["scores 必须是 {维度键: 分数} 对象，comment 必须是字符串。"])
    try:
        grade = override_grade(session, actor(), found, rubric, scores=parse_scores(rubric, scores_in),
                               comment=comment, reason=str(body.get("reason") or ""))
        session.commit()
    except ReviewError as exc:
        session.rollback()
        return _invalid([str(exc)])
    except IntegrityError:
        session.rollback()
        return _invalid(["同时有另一次评分写入，请重试。"], 409)
    view = build_essay_view(session, found, rubric)
    return jsonify({**essay_json(view), "grade_version": grade.version}), 201


@bp.post("/essays/<int:essay_id>/regrade")
def regrade(essay_id: int) -> Any:
    session = db()
    found = get_essay_or_404(session, user(), essay_id)
    moved = requeue(session, actor(), [found.id], assignment_id=found.assignment_id)
    session.commit()
    if not moved:
        return _invalid(["这篇作文正在排队或评分中。"], 409)
    return jsonify(requeued=True, queued=queue_essays(moved)), 202
