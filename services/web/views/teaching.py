"""备课 pages (issue 20): an assignment's 题目解析 (立意 angles, edited, chosen, printed, exported), the 素材 library
with a school's own entries, and 教案 (requested from a goal and/or an assignment, versioned, edited, exported)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.web.access import classroom_scope, get_assignment_or_404, get_school_or_404, is_admin, school_scope
from services.web.context import db, settings, task_sender
from services.web.guards import actor, admin_required, login_required, user
from services.web.numbers import ascii_int
from services.web.teaching_docx import lesson_docx, rank_name, topic_docx
from services.web.teaching_service import (
    STATUS_NAMES,
    TeachingError,
    add_school_material,
    angles_of,
    choose_angle,
    latest_version,
    picked_entries,
    request_analysis,
    request_lesson,
    save_angles,
    save_lesson,
    split_words,
    stale_after,
)
from shared.material_search import search
from shared.models import (
    Assignment,
    AssignmentTopic,
    Classroom,
    LessonPlan,
    LessonPlanVersion,
    School,
    SchoolMaterial,
    User,
)
from shared.prompts.material_library import KINDS, THEMES
from shared.prompts.teaching import LESSON_SECTIONS, MAX_ANGLES
from shared.teaching import entries_for

bp = Blueprint("teaching", __name__)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
LISTED = 50
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def docx_response(data: bytes, name: str) -> Response:
    safe = _UNSAFE_NAME.sub("_", name)
    return Response(data, mimetype=DOCX, headers={
        "Content-Disposition": f"attachment; filename=\"teaching.docx\"; filename*=UTF-8''{quote(safe)}"})


def get_plan_or_404(session: Session, account: User, plan_id: int) -> LessonPlan:
    """A plan from an assignment follows the assignment's class scope; a plan from a goal alone is its author's
    (and the school admins')."""
    plan = session.get(LessonPlan, plan_id)
    if plan is None:
        abort(404)
    if plan.assignment_id is not None:
        get_assignment_or_404(session, account, plan.assignment_id)
    elif plan.created_by != account.id and not (
        is_admin(account) and session.scalar(select(School.id).where(School.id == plan.school_id,
                                                                     school_scope(account))) is not None
    ):
        abort(404)
    return plan


def topic_json(session: Session, assignment: Assignment) -> dict[str, Any]:
    """The assignment's 题目解析 as the page and the API show it."""
    topic = session.get(AssignmentTopic, assignment.id)
    analysis = topic.analysis if topic else None
    pick = topic.pick if topic else None
    angles = angles_of(topic)
    return {
        "assignment_id": assignment.id,
        "status": str(analysis.status) if analysis else None,
        "status_name": STATUS_NAMES.get(str(analysis.status)) if analysis else "尚未生成",
        "error": analysis.error if analysis else None,
        "edited": bool(topic and topic.edited_angles is not None),
        "angles": [{**angle, "rank": rank_name(i, len(angles))} for i, angle in enumerate(angles)],
        "chosen": topic.chosen if topic else None,
        "materials": {
            "status": str(pick.status), "status_name": STATUS_NAMES.get(str(pick.status)), "error": pick.error,
            "candidates": list(pick.candidates),
            "picks": [{**entry.model_dump(), "kind_name": entry.kind_name, "usage": usage}
                      for entry, usage in picked_entries(session, pick)],
        } if pick else None,
        "model_name": analysis.model_name if analysis else None,
        "pending": any(row is not None and str(row.status) in ("queued", "running") for row in (analysis, pick)),
    }


@bp.get("/assignments/<int:assignment_id>/topic")
@login_required
def topic(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    plans = session.scalars(select(LessonPlan).where(LessonPlan.assignment_id == assignment.id)
                            .order_by(LessonPlan.id.desc()).limit(LISTED)).all()
    return render_template("teaching/topic.html", assignment=assignment, classroom=assignment.classroom,
                           data=topic_json(session, assignment), themes=THEMES, max_angles=MAX_ANGLES, plans=plans,
                           status_names=STATUS_NAMES)


@bp.get("/assignments/<int:assignment_id>/topic.json")
@login_required
def topic_status(assignment_id: int) -> Any:
    session = db()
    return jsonify(topic_json(session, get_assignment_or_404(session, user(), assignment_id)))


@bp.post("/assignments/<int:assignment_id>/topic")
@login_required
def analyse(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    requested = request_analysis(session, actor(), task_sender(), assignment,
                                 stale_after_s=stale_after(settings().task_time_limit_s))
    data = topic_json(session, assignment)
    if data["status"] == "failed":
        flash(data["error"] or "生成失败。", "error")
    elif data["status"] == "done":
        flash("已显示此作文题的立意分析（同一题目与评分标准只生成一次）。", "ok")
    elif requested.sent:
        flash("立意分析已排队，生成后本页自动刷新。", "ok")
    return redirect(url_for("teaching.topic", assignment_id=assignment.id), 303)


def angles_from_form(form: Any) -> list[dict[str, Any]]:
    angles = []
    for index in range(MAX_ANGLES):
        thesis = form.get(f"thesis-{index}", "").strip()
        if not thesis:
            continue  # an emptied 立意 is removed
        angles.append({"thesis": thesis, "theme": form.get(f"theme-{index}", ""),
                       "keywords": split_words(form.get(f"keywords-{index}", "")),
                       "relation": form.get(f"relation-{index}", "").strip(),
                       "off_topic": form.get(f"off_topic-{index}", "").strip()})
    return angles


@bp.post("/assignments/<int:assignment_id>/topic/angles")
@login_required
def edit_angles(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    try:
        save_angles(session, actor(), user(), assignment, angles_from_form(request.form))
    except TeachingError as exc:
        flash(str(exc), "error")
        return redirect(url_for("teaching.topic", assignment_id=assignment.id), 303)
    flash("已保存修改后的立意。", "ok")
    return redirect(url_for("teaching.topic", assignment_id=assignment.id), 303)


@bp.post("/assignments/<int:assignment_id>/topic/choice")
@login_required
def choose(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    index = ascii_int(request.form.get("angle", ""))
    try:
        choose_angle(session, actor(), task_sender(), user(), assignment, -1 if index is None else index,
                     stale_after_s=stale_after(settings().task_time_limit_s))
    except TeachingError as exc:
        flash(str(exc), "error")
    return redirect(url_for("teaching.topic", assignment_id=assignment.id, _anchor="materials"), 303)


@bp.get("/assignments/<int:assignment_id>/topic.docx")
@login_required
def topic_docx_download(assignment_id: int) -> Any:
    return send_topic_docx(assignment_id)


def send_topic_docx(assignment_id: int) -> Response:
    """The 题目解析 as Word (audited); 404 before any angle exists. Pages and API alike."""
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    topic_row = session.get(AssignmentTopic, assignment.id)
    angles = angles_of(topic_row)
    if not angles:
        abort(404, description="尚未生成立意。")
    data = topic_docx(assignment.title, assignment.prompt_text, angles, topic_row.chosen if topic_row else None,
                      picked_entries(session, topic_row.pick if topic_row else None))
    actor().record(session, "teaching.topic_download", object_type="assignment", object_id=assignment.id)
    session.commit()
    return docx_response(data, f"题目解析-{assignment.title}.docx")


@bp.get("/materials")
@login_required
def materials() -> Any:
    session = db()
    account = user()
    query = request.args.get("q", "").strip()[:200]
    theme = request.args.get("theme", "")
    kind = request.args.get("kind", "")
    entries = entries_for(session, account.school_id)
    hits = search(entries, query, themes=[theme] if theme in THEMES else (), limit=len(entries),
                  kinds=[kind] if kind in KINDS else ())
    if theme in THEMES:
        hits = [hit for hit in hits if theme in hit.entry.themes]
    own = session.scalars(select(SchoolMaterial).where(SchoolMaterial.school_id == account.school_id)
                          .order_by(SchoolMaterial.id)).all() if account.school_id else []
    return render_template("teaching/materials.html", hits=hits, query=query, theme=theme, kind=kind, themes=THEMES,
                           kinds=KINDS, own=own, admin=is_admin(account) and account.school_id is not None,
                           total=len(entries))


@bp.post("/admin/materials")
@admin_required
def add_material() -> Any:
    session = db()
    account = user()
    if account.school_id is None:
        abort(404)
    form = {key: request.form.get(key, "") for key in ("kind", "title", "text", "summary", "origin", "source")}
    form["themes"] = request.form.getlist("themes")
    try:
        row = add_school_material(session, actor(), account, account.school_id, form)
    except TeachingError as exc:
        flash(str(exc), "error")
        return redirect(url_for("teaching.materials"), 303)
    flash(f"已加入本校素材：{row.title}", "ok")
    return redirect(url_for("teaching.materials"), 303)


@bp.post("/admin/materials/<int:material_id>/delete")
@admin_required
def delete_material(material_id: int) -> Any:
    session = db()
    row = session.get(SchoolMaterial, material_id)
    if row is None:
        abort(404)
    get_school_or_404(session, user(), row.school_id)
    actor().record(session, "teaching.material_delete", object_type="school_material", object_id=row.id,
                   school_id=row.school_id)
    session.delete(row)
    session.commit()
    flash("已删除本校素材。", "ok")
    return redirect(url_for("teaching.materials"), 303)


@bp.get("/lesson-plans")
@login_required
def lessons() -> Any:
    session = db()
    account = user()
    plans = session.scalars(select(LessonPlan).where(LessonPlan.created_by == account.id)
                            .order_by(LessonPlan.id.desc()).limit(LISTED)).all()
    assignments = session.scalars(
        select(Assignment).join(Classroom, Assignment.classroom_id == Classroom.id).where(classroom_scope(account))
        .order_by(Assignment.id.desc()).limit(200)
    ).all()
    return render_template("teaching/lessons.html", plans=plans, assignments=assignments, status_names=STATUS_NAMES)


@bp.post("/lesson-plans")
@login_required
def create_plan() -> Any:
    session = db()
    raw = request.form.get("assignment_id", "").strip()
    assignment = None
    if raw:
        assignment_id = ascii_int(raw)
        if assignment_id is None:
            abort(404)
        assignment = get_assignment_or_404(session, user(), assignment_id)
    try:
        plan = request_lesson(session, actor(), task_sender(), user(), request.form.get("goal", ""), assignment)
    except TeachingError as exc:
        flash(str(exc), "error")
        back = url_for("teaching.topic", assignment_id=assignment.id) if assignment else url_for("teaching.lessons")
        return redirect(back, 303)
    if plan.error:
        flash(plan.error, "error")
    else:
        flash("教案已排队，生成后本页自动刷新。", "ok")
    return redirect(url_for("teaching.lesson", plan_id=plan.id), 303)


def plan_json(session: Session, plan: LessonPlan, version: LessonPlanVersion | None) -> dict[str, Any]:
    count = len(plan.versions)
    return {
        "id": plan.id, "assignment_id": plan.assignment_id, "goal": plan.goal, "facts": plan.facts,
        "status": str(plan.status), "status_name": STATUS_NAMES.get(str(plan.status)), "error": plan.error,
        "pending": str(plan.status) in ("queued", "running"), "model_name": plan.model_name, "versions": count,
        "version": version.version if version else None, "source": version.source if version else None,
        "content": version.content if version else None,
    }


def _version(session: Session, plan: LessonPlan) -> LessonPlanVersion | None:
    number = ascii_int(request.args.get("version", ""))
    if number is None:
        return latest_version(session, plan)
    version = session.scalar(select(LessonPlanVersion).where(LessonPlanVersion.plan_id == plan.id,
                                                             LessonPlanVersion.version == number))
    if version is None:
        abort(404)
    return version


def plan_heading(session: Session, plan: LessonPlan) -> str:
    assignment = session.get(Assignment, plan.assignment_id) if plan.assignment_id else None
    if assignment is not None:
        return f"{assignment.classroom.name} · {assignment.title} · 作文讲评教案"
    return f"教案：{plan.goal}"


@bp.get("/lesson-plans/<int:plan_id>")
@login_required
def lesson(plan_id: int) -> Any:
    session = db()
    plan = get_plan_or_404(session, user(), plan_id)
    version = _version(session, plan)
    assignment = session.get(Assignment, plan.assignment_id) if plan.assignment_id else None
    return render_template("teaching/lesson.html", plan=plan, version=version, assignment=assignment,
                           heading=plan_heading(session, plan), data=plan_json(session, plan, version),
                           sections=LESSON_SECTIONS, form=_lesson_form(version.content) if version else {})


@bp.get("/lesson-plans/<int:plan_id>/status.json")
@login_required
def lesson_status(plan_id: int) -> Any:
    session = db()
    plan = get_plan_or_404(session, user(), plan_id)
    return jsonify(plan_json(session, plan, latest_version(session, plan)))


SEPARATOR = re.compile(r"\s*[｜|]\s*")


def _lesson_form(content: dict[str, Any]) -> dict[str, str]:
    form = {key: "\n".join(content.get(key) or []) for key in
            ("objectives", "key_points", "difficulties", "activities", "homework")}
    form["steps"] = "\n".join(f"{s['name']}｜{s['minutes']}｜{s['activity']}" for s in content.get("steps") or [])
    form["examples"] = "\n".join(f"{e['original']}｜{e['revised']}｜{e['note']}" for e in content.get("examples") or [])
    return form


def lesson_from_form(form: Any) -> dict[str, Any]:
    """Sections one item a line; 教学过程 as 环节｜分钟｜活动 and 例句 as 原句｜修改｜说明."""
    def lines(key: str) -> list[str]:
        return [line.strip() for line in form.get(key, "").splitlines() if line.strip()]

    content: dict[str, Any] = {key: lines(key) for key in
                               ("objectives", "key_points", "difficulties", "activities", "homework")}
    steps = []
    for number, line in enumerate(lines("steps"), start=1):
        parts = SEPARATOR.split(line, maxsplit=2)
        minutes = ascii_int(parts[1]) if len(parts) == 3 else None
        if minutes is None:
            raise TeachingError(f"教学过程第 {number} 行应写成“环节｜分钟｜师生活动”，分钟为整数。")
        steps.append({"name": parts[0], "minutes": minutes, "activity": parts[2]})
    examples = []
    for number, line in enumerate(lines("examples"), start=1):
        parts = SEPARATOR.split(line, maxsplit=2)
        if len(parts) != 3:
            raise TeachingError(f"例句与修改第 {number} 行应写成“原句｜修改后｜说明”。")
        examples.append({"original": parts[0], "revised": parts[1], "note": parts[2]})
    content["steps"], content["examples"] = steps, examples
    return content


@bp.post("/lesson-plans/<int:plan_id>")
@login_required
def save_plan(plan_id: int) -> Any:
    session = db()
    plan = get_plan_or_404(session, user(), plan_id)
    try:
        version = save_lesson(session, actor(), user(), plan, lesson_from_form(request.form))
    except TeachingError as exc:
        flash(str(exc), "error")
        return redirect(url_for("teaching.lesson", plan_id=plan.id), 303)
    flash(f"已保存为第 {version.version} 版。", "ok")
    return redirect(url_for("teaching.lesson", plan_id=plan.id), 303)


@bp.get("/lesson-plans/<int:plan_id>/plan.docx")
@login_required
def lesson_docx_download(plan_id: int) -> Any:
    return send_lesson_docx(plan_id)


def send_lesson_docx(plan_id: int) -> Response:
    """A 教案 version (``?version=``, else the latest) as Word (audited); 404 before the first version."""
    session = db()
    plan = get_plan_or_404(session, user(), plan_id)
    version = _version(session, plan)
    if version is None:
        abort(404, description="教案尚未生成。")
    data = lesson_docx(plan_heading(session, plan), plan.goal, version.content, version.version)
    actor().record(session, "teaching.lesson_download", object_type="lesson_plan", object_id=plan.id,
                   version=version.version)
    session.commit()
    return docx_response(data, f"教案-{plan.id}-第{version.version}版.docx")
