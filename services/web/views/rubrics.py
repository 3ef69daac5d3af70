"""Rubrics page: every rubric an assignment can use; school admins upload their school's own YAML rubric."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from services.web.access import get_school_or_404, is_admin, visible_schools
from services.web.context import db, settings
from services.web.guards import actor, admin_required, login_required, user
from services.web.numbers import ascii_int
from services.web.rubric_store import rubric_choices, save_school_rubric
from shared.models import Role
from shared.prompts.rubric import RubricError

logger = logging.getLogger(__name__)

bp = Blueprint("rubrics", __name__)


def _render(errors: list[str], status: int = 200) -> Any:
    account = user()
    schools = db().scalars(visible_schools(account)).all() if is_admin(account) else []
    school_id = account.school_id
    if account.role == Role.sysadmin:
        picked = request.args.get("school_id", "")
        school_id = ascii_int(picked) or (schools[0].id if schools else None)
    choices = rubric_choices(settings().data_dir, school_id)
    return render_template("rubrics/index.html", choices=choices, schools=schools, school_id=school_id,
                           errors=errors), status


@bp.get("/rubrics")
@login_required
def index() -> Any:
    return _render([])


@bp.post("/rubrics")
@admin_required
def upload() -> Any:
    session = db()
    account = user()
    raw = request.form.get("school_id", "")
    school_id = (ascii_int(raw) if account.role == Role.sysadmin else None) or account.school_id
    if school_id is None:
        return _render(["请选择学校。"], 400)
    school = get_school_or_404(session, account, school_id)
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        return _render(["请选择评分标准文件（.yaml）。"], 400)
    try:
        rubric = save_school_rubric(settings().data_dir, school.id, upload_file.filename, upload_file.read())
    except RubricError as exc:
        return _render([str(exc)], 400)
    actor().record(session, "rubric.upload", object_type="school", object_id=school.id, rubric=rubric.ref)
    session.commit()
    flash(f"已添加本校评分标准“{rubric.name}”（{rubric.ref}）。", "ok")
    return redirect(url_for("rubrics.index"), 303)
