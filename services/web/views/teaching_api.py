"""Teaching-assistant endpoints of the JSON API (bearer token): an assignment's 题目解析 (read, request, edit,
choose an angle for 素材), the 素材 library search, and 教案 (request, read, new version). Same access rules and
services as the pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for

from services.web.access import get_assignment_or_404
from services.web.api_auth import authenticate
from services.web.context import db, settings, task_sender
from services.web.guards import actor, user
from services.web.numbers import ascii_int
from services.web.teaching_service import (
    TeachingError,
    choose_angle,
    latest_version,
    request_analysis,
    request_lesson,
    save_angles,
    save_lesson,
    stale_after,
)
from services.web.views.teaching import get_plan_or_404, plan_json, send_lesson_docx, send_topic_docx, topic_json
from shared.material_search import search
from shared.prompts.material_library import KINDS, THEMES
from shared.teaching import entries_for

bp = Blueprint("teaching_api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)

SEARCH_LIMIT = 50


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="请求体必须是 JSON 对象。")
    return data


def _refused(exc: TeachingError) -> Any:
    return jsonify(error=str(exc), details=[str(exc)], status=400), 400


def _topic(assignment_id: int, status: int = 200) -> Any:
    session = db()
    data = topic_json(session, get_assignment_or_404(session, user(), assignment_id))
    return jsonify(data), status


@bp.get("/assignments/<int:assignment_id>/topic")
def get_topic(assignment_id: int) -> Any:
    return _topic(assignment_id)


@bp.post("/assignments/<int:assignment_id>/topic")
def request_topic(assignment_id: int) -> Any:
    """200 with the cached angles when this prompt and rubric were analysed before; 202 while a task writes them."""
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    request_analysis(session, actor(), task_sender(), assignment,
                                 stale_after_s=stale_after(settings().task_time_limit_s))
    data = topic_json(session, assignment)
    if data["status"] == "failed":
        return jsonify(data), 503
    return jsonify(data), 200 if data["status"] == "done" else 202


@bp.post("/assignments/<int:assignment_id>/topic/angles")
def edit_topic_angles(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    angles = _body().get("angles")
    if not isinstance(angles, list) or not all(isinstance(angle, dict) for angle in angles):
        abort(400, description="angles 必须是立意对象的数组。")
    try:
        save_angles(session, actor(), user(), assignment, angles)
    except TeachingError as exc:
        return _refused(exc)
    return _topic(assignment.id)


@bp.post("/assignments/<int:assignment_id>/topic/choice")
def choose_topic_angle(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    index = ascii_int(_body().get("angle"))
    try:
        choose_angle(session, actor(), task_sender(), user(), assignment, -1 if index is None else index,
                     stale_after_s=stale_after(settings().task_time_limit_s))
    except TeachingError as exc:
        return _refused(exc)
    data = topic_json(session, assignment)
    return jsonify(data), 200 if data["materials"] and data["materials"]["status"] == "done" else 202


@bp.get("/assignments/<int:assignment_id>/topic.docx")
def topic_docx(assignment_id: int) -> Any:
    return send_topic_docx(assignment_id)


@bp.get("/materials")
def search_materials() -> Any:
    """The library and the caller's school's own entries, by key words (BM25) within a theme and a kind."""
    account = user()
    theme, kind = request.args.get("theme", ""), request.args.get("kind", "")
    if theme and theme not in THEMES:
        abort(400, description="主题须为：" + "、".join(THEMES))
    if kind and kind not in KINDS:
        abort(400, description="类型须为：" + "、".join(KINDS))
    hits = search(entries_for(db(), account.school_id), request.args.get("q", "")[:200],
                  themes=[theme] if theme else (), kinds=[kind] if kind else (), limit=SEARCH_LIMIT)
    if theme:
        hits = [hit for hit in hits if theme in hit.entry.themes]
    return jsonify({"materials": [{**hit.entry.model_dump(), "score": hit.score} for hit in hits]})


@bp.post("/lesson-plans")
def create_lesson_plan() -> Any:
    session = db()
    body = _body()
    assignment = None
    if body.get("assignment_id") is not None:
        assignment_id = ascii_int(body.get("assignment_id"))
        if assignment_id is None:
            abort(404)
        assignment = get_assignment_or_404(session, user(), assignment_id)
    goal = body.get("goal", "")
    if not isinstance(goal, str):
        abort(400, description="goal 必须是字符串。")
    try:
        plan = request_lesson(session, actor(), task_sender(), user(), goal, assignment)
    except TeachingError as exc:
        return _refused(exc)
    data = plan_json(session, plan, None)
    data["url"] = url_for("teaching_api.get_lesson_plan", plan_id=plan.id)
    return jsonify(data), 503 if plan.error else 202


@bp.get("/lesson-plans/<int:plan_id>")
def get_lesson_plan(plan_id: int) -> Any:
    session = db()
    plan = get_plan_or_404(session, user(), plan_id)
    return jsonify(plan_json(session, plan, latest_version(session, plan)))


@bp.post("/lesson-plans/<int:plan_id>/versions")
def add_lesson_version(plan_id: int) -> Any:
    session = db()
    plan = get_plan_or_404(session, user(), plan_id)
    content = _body().get("content")
    if not isinstance(content, dict):
        abort(400, description="content 必须是教案对象。")
    try:
        version = save_lesson(session, actor(), user(), plan, content)
    except TeachingError as exc:
        return _refused(exc)
    session.refresh(plan)
    return jsonify(plan_json(session, plan, version)), 201


@bp.get("/lesson-plans/<int:plan_id>/docx")
def lesson_plan_docx(plan_id: int) -> Any:
    return send_lesson_docx(plan_id)
