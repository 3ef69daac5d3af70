"""Personal data pages for school admins and sysadmins: export one student's data, erase a student, class or school.

Erasing asks for the object's name to be typed again (and the CSRF token, like every form). A school admin
acts within their own school; a sysadmin anywhere. Every export and erasure is audited with ids only.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from services.web.access import get_any_student_or_404, get_classroom_or_404, get_school_or_404, visible_schools
from services.web.context import db, session_factory, settings
from services.web.guards import actor, admin_required, user
from shared.erasure import ErasureRefused, Target, erase, what_goes
from shared.models import Adapter, User
from shared.subject_export import export_json, export_student_audited

logger = logging.getLogger(__name__)

bp = Blueprint("privacy", __name__)

WHAT_GOES = {
    "student": "该学生的名单信息、全部作文及每一版评分（错误标注、扣分）、训练计划，以及列有该学生的班级报表文件",
    "classroom": "该班级的名单、全部作业和作文及评分、训练计划、班级报表文件，以及待确认的上传预览",
    "school": "该校全部班级（及其名单、作业、作文、评分、训练计划、报表）、全校报表、本校评分标准文件和全部本校账户",
}
TARGET_NAMES = {"student": "学生", "classroom": "班级", "school": "学校"}
COUNT_NAMES = {"students": "学生", "classrooms": "班级", "essays": "作文", "users": "账户"}


@bp.get("/admin/privacy")
@admin_required
def index() -> Any:
    schools = db().scalars(visible_schools(user())).all()
    return render_template("privacy/index.html", schools=schools, retention_days=settings().retention_days)


@bp.get("/admin/students/<int:student_id>/export")
@admin_required
def export(student_id: int) -> Any:
    session = db()
    student = get_any_student_or_404(session, user(), student_id)
    who = actor()
    data = export_student_audited(session, student.id, actor=who.name, actor_id=who.user_id, ip=who.ip)
    if data is None:
        abort(404)
    session.commit()
    response = Response(export_json(data), mimetype="application/json")
    response.headers["Content-Disposition"] = f"attachment; filename=student-{student.id}.json"
    return response


def _confirm_page(target: Target, object_id: int, name: str, back: str, error: str | None = None) -> Any:
    counts = {COUNT_NAMES[key]: count for key, count in what_goes(db(), target, object_id).items()}
    page = render_template(
        "privacy/confirm.html", target=target, target_name=TARGET_NAMES[target], object_id=object_id, name=name,
        what=WHAT_GOES[target], counts=counts, back=back, error=error,
    )
    return page, 400 if error else 200


def _run(target: Target, object_id: int, name: str, back: str, done: str) -> Any:
    """GET shows the confirmation; POST erases when the typed name matches."""
    if request.method == "GET":
        return _confirm_page(target, object_id, name, back)
    if request.form.get("confirm_name", "").strip() != name:
        error = f"请输入{TARGET_NAMES[target]}名称以确认删除。"
        return _confirm_page(target, object_id, name, back, error=error)
    who = actor()
    db().rollback()  # the erasure runs in its own transaction; end this request's reads first
    try:
        erased = erase(session_factory(), settings().data_dir, target, object_id, actor=who.name,
                       actor_id=who.user_id, ip=who.ip)
    except ErasureRefused as exc:
        return _confirm_page(target, object_id, name, back, error=str(exc))
    if erased is None:
        abort(404)
    flash(f"已永久删除{TARGET_NAMES[target]}“{name}”及其全部数据。", "ok")
    if erased.adapter_ids:
        names = db().scalars(select(Adapter.name).where(Adapter.id.in_(erased.adapter_ids)).order_by(Adapter.id))
        flash(f"以下模型适配器曾用这些作文训练，请在“模型适配”页重新训练或删除：{'、'.join(names)}", "error")
    if db().scalar(select(User.id).where(User.id == session.get("uid"))) is None:
        session.clear()  # a school admin who erased their own school has no account left
        return redirect(url_for("auth.login"), 303)
    return redirect(done, 303)


@bp.route("/admin/students/<int:student_id>/erase", methods=["GET", "POST"])
@admin_required
def erase_student_page(student_id: int) -> Any:
    student = get_any_student_or_404(db(), user(), student_id)
    back = url_for("classes.show", classroom_id=student.classroom_id)
    return _run("student", student.id, student.name, back, back)


@bp.route("/admin/classes/<int:classroom_id>/erase", methods=["GET", "POST"])
@admin_required
def erase_classroom_page(classroom_id: int) -> Any:
    classroom = get_classroom_or_404(db(), user(), classroom_id)
    back = url_for("classes.show", classroom_id=classroom.id)
    return _run("classroom", classroom.id, classroom.name, back, url_for("classes.index"))


@bp.route("/admin/schools/<int:school_id>/erase", methods=["GET", "POST"])
@admin_required
def erase_school_page(school_id: int) -> Any:
    school = get_school_or_404(db(), user(), school_id)
    back = url_for("privacy.index")
    return _run("school", school.id, school.name, back, back)
