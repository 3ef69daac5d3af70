"""A class's students online (teacher side): whether grades and the chat are open, one-time sign-up codes,
class materials for the chat, the school's blocked words, and what the students ask."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from services.web.access import get_classroom_or_404, get_student_or_404
from services.web.chat_admin import (
    add_blocked_word,
    add_material,
    class_materials,
    read_material,
    remove_material,
    school_words,
)
from services.web.context import db, settings
from services.web.essay_import import upload_limits
from services.web.guards import actor, login_required, user
from services.web.ingest import UploadRejected
from services.web.student_accounts import (
    issue_code,
    live_code_students,
    revoke_codes,
    set_account_active,
    set_student_access,
    student_access,
)
from services.web.times import person_zone
from shared.chat.analytics import class_analytics
from shared.models import Classroom, Student, User

bp = Blueprint("student_admin", __name__)


def _classroom(classroom_id: int) -> Classroom:
    return get_classroom_or_404(db(), user(), classroom_id)


def _page(classroom: Classroom, *, new_code: tuple[Student, str] | None = None, errors: list[str] | None = None,
          status: int = 200) -> Any:
    session = db()
    students = list(session.scalars(select(Student).where(Student.classroom_id == classroom.id)
                                    .order_by(Student.student_number, Student.name)))
    accounts = {u.student_id: u for u in session.scalars(
        select(User).where(User.student_id.in_([s.id for s in students])))} if students else {}
    return render_template(
        "student_admin/settings.html", classroom=classroom, access=student_access(session, classroom.id),
        students=students, accounts=accounts, live_codes=live_code_students(session, [s.id for s in students]),
        new_code=new_code, materials=class_materials(session, classroom.id),
        words=school_words(session, classroom.school_id), errors=errors or [], code_days=settings().student_code_days,
    ), status


@bp.get("/classes/<int:classroom_id>/students-online")
@login_required
def settings_page(classroom_id: int) -> Any:
    return _page(_classroom(classroom_id))


@bp.post("/classes/<int:classroom_id>/students-online")
@login_required
def save_access(classroom_id: int) -> Any:
    classroom = _classroom(classroom_id)
    session = db()
    set_student_access(session, actor(), classroom, grades_open=request.form.get("grades_open") == "1",
                       chat_open=request.form.get("chat_open") == "1")
    session.commit()
    flash("已保存学生端设置。", "ok")
    return redirect(url_for("student_admin.settings_page", classroom_id=classroom.id))


@bp.post("/classes/<int:classroom_id>/students/<int:student_id>/code")
@login_required
def create_code(classroom_id: int, student_id: int) -> Any:
    classroom = _classroom(classroom_id)
    session = db()
    student = get_student_or_404(session, user(), classroom, student_id)
    code = issue_code(session, actor(), student, settings().student_code_days)
    session.commit()
    return _page(classroom, new_code=(student, code))


@bp.post("/classes/<int:classroom_id>/students/<int:student_id>/code/revoke")
@login_required
def revoke_code(classroom_id: int, student_id: int) -> Any:
    classroom = _classroom(classroom_id)
    session = db()
    student = get_student_or_404(session, user(), classroom, student_id)
    count = revoke_codes(session, actor(), student)
    session.commit()
    flash(f"已作废 {student.name} 的 {count} 个未使用的登录码。", "ok")
    return redirect(url_for("student_admin.settings_page", classroom_id=classroom.id))


@bp.post("/classes/<int:classroom_id>/students/<int:student_id>/account")
@login_required
def set_account(classroom_id: int, student_id: int) -> Any:
    classroom = _classroom(classroom_id)
    session = db()
    student = get_student_or_404(session, user(), classroom, student_id)
    active = request.form.get("active") == "1"
    if set_account_active(session, actor(), student, active) is None:
        abort(404)
    session.commit()
    flash(f"已{'恢复' if active else '停用'} {student.name} 的学生账号。", "ok")
    return redirect(url_for("student_admin.settings_page", classroom_id=classroom.id))


@bp.post("/classes/<int:classroom_id>/chat-materials")
@login_required
def upload_material(classroom_id: int) -> Any:
    classroom = _classroom(classroom_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(classroom, errors=["请选择要上传的资料文件（.docx 或 .txt）。"], status=400)
    try:
        material = read_material(upload.filename, upload.read(), upload_limits(settings()))
    except UploadRejected as exc:
        return _page(classroom, errors=[str(exc)], status=400)
    session = db()
    add_material(session, actor(), classroom, material)
    session.commit()
    flash(f"已上传资料《{material.title}》。", "ok")
    return redirect(url_for("student_admin.settings_page", classroom_id=classroom.id))


@bp.post("/classes/<int:classroom_id>/chat-materials/<int:material_id>/delete")
@login_required
def delete_material(classroom_id: int, material_id: int) -> Any:
    classroom = _classroom(classroom_id)
    session = db()
    if not remove_material(session, actor(), classroom, material_id):
        abort(404)
    session.commit()
    flash("已删除资料。", "ok")
    return redirect(url_for("student_admin.settings_page", classroom_id=classroom.id))


@bp.post("/classes/<int:classroom_id>/chat-words")
@login_required
def add_word(classroom_id: int) -> Any:
    classroom = _classroom(classroom_id)
    session = db()
    try:
        word = add_blocked_word(session, actor(), classroom.school_id, request.form.get("word", ""))
    except ValueError as exc:
        return _page(classroom, errors=[str(exc)], status=400)
    session.commit()
    flash(f"已把“{word}”加入本校屏蔽词。", "ok")
    return redirect(url_for("student_admin.settings_page", classroom_id=classroom.id))


@bp.get("/classes/<int:classroom_id>/chat-analytics")
@login_required
def analytics(classroom_id: int) -> Any:
    classroom = _classroom(classroom_id)
    return render_template("student_admin/analytics.html", classroom=classroom,
                           stats=class_analytics(db(), classroom.id, zone=person_zone()))
