"""Classes and their rosters: list, create, show, add or remove a student, import a roster file, templates."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from services.web.access import assignable_teachers, get_classroom_or_404, get_student_or_404, visible_classrooms
from services.web.context import db, settings
from services.web.essay_import import upload_limits
from services.web.forms import validate_class
from services.web.guards import actor, login_required, user
from services.web.ingest import (
    UploadRejected,
    essay_template_csv,
    essay_template_xlsx,
    roster_template_csv,
    roster_template_xlsx,
)
from services.web.records import DuplicateName, add_student, class_counts, class_page, create_classroom, remove_student
from services.web.roster import import_roster, read_roster_file

logger = logging.getLogger(__name__)

bp = Blueprint("classes", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATES = {
    "roster.xlsx": (roster_template_xlsx, XLSX, "班级名单模板.xlsx"),
    "roster.csv": (roster_template_csv, "text/csv; charset=utf-8", "班级名单模板.csv"),
    "essays.xlsx": (essay_template_xlsx, XLSX, "作文上传模板.xlsx"),
    "essays.csv": (essay_template_csv, "text/csv; charset=utf-8", "作文上传模板.csv"),
}


@bp.get("/")
@login_required
def home() -> Any:
    return redirect(url_for("classes.index"))


@bp.get("/classes")
@login_required
def index() -> Any:
    session = db()
    classrooms = session.scalars(visible_classrooms(user())).all()
    students, assignments = class_counts(session, [c.id for c in classrooms])
    return render_template("classes/index.html", classrooms=classrooms, students=students, assignments=assignments)


@bp.route("/classes/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    session = db()
    teachers = session.scalars(assignable_teachers(user())).all()
    if request.method == "GET":
        return render_template("classes/new.html", teachers=teachers, form={}, errors=[])
    data, errors = validate_class(session, user(), request.form)
    if data is not None:
        try:
            classroom = create_classroom(session, actor(), data)
        except DuplicateName as exc:
            errors = [str(exc)]
        else:
            session.commit()
            flash(f"已创建班级“{classroom.name}”。", "ok")
            return redirect(url_for("classes.show", classroom_id=classroom.id))
    return render_template("classes/new.html", teachers=teachers, form=request.form, errors=errors), 400


@bp.get("/classes/<int:classroom_id>")
@login_required
def show(classroom_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    page = class_page(session, classroom)
    return render_template("classes/show.html", classroom=classroom, students=page.students,
                           with_essays=page.with_essays, assignments=page.assignments)


@bp.post("/classes/<int:classroom_id>/students")
@login_required
def add(classroom_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    name = request.form.get("name", "").strip()
    number = request.form.get("student_number", "").strip() or None
    if not name or len(name) > 100 or (number and len(number) > 50):
        flash("请填写学生姓名（不超过 100 字），学号不超过 50 字。", "error")
        return redirect(url_for("classes.show", classroom_id=classroom.id), 303)
    try:
        add_student(session, actor(), classroom, name, number)
    except DuplicateName as exc:
        flash(str(exc), "error")
    else:
        session.commit()
        flash(f"已添加学生 {name}。", "ok")
    return redirect(url_for("classes.show", classroom_id=classroom.id), 303)


@bp.post("/classes/<int:classroom_id>/students/<int:student_id>/delete")
@login_required
def remove(classroom_id: int, student_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    student = get_student_or_404(session, user(), classroom, student_id)
    try:
        remove_student(session, actor(), student)
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        session.commit()
        flash(f"已从名单中删除 {student.name}。", "ok")
    return redirect(url_for("classes.show", classroom_id=classroom.id), 303)


@bp.post("/classes/<int:classroom_id>/roster")
@login_required
def roster(classroom_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择名单文件（.xlsx 或 .csv）。", "error")
        return redirect(url_for("classes.show", classroom_id=classroom.id), 303)
    try:
        rows = read_roster_file(upload.filename, upload.read(), upload_limits(settings()))
    except UploadRejected as exc:
        flash("名单导入失败，没有添加任何学生：" + "；".join(exc.details), "error")
        return redirect(url_for("classes.show", classroom_id=classroom.id), 303)
    result = import_roster(session, actor(), classroom, rows, filename=upload.filename)
    session.commit()
    message = f"名单已导入：新增 {len(result.added)} 名学生"
    if result.skipped:
        message += f"，{len(result.skipped)} 名已在名单中（{'、'.join(result.skipped[:10])}）"
    flash(message + "。", "ok")
    return redirect(url_for("classes.show", classroom_id=classroom.id), 303)


@bp.get("/templates/<name>")
@login_required
def template(name: str) -> Any:
    entry = TEMPLATES.get(name)
    if entry is None:
        abort(404)
    build, mimetype, download_name = entry
    response = Response(build(), mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(download_name)}"
    return response
