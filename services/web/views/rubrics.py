"""Rubrics page: every rubric an assignment can use; school admins upload their school's own YAML rubric."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for

from services.web.access import get_school_or_404, is_admin, visible_schools
from services.web.context import db, settings
from services.web.guards import actor, admin_required, login_required, user
from services.web.numbers import ascii_int
from services.web.rubric_store import RubricChoice, find_choice, rubric_choices, save_school_rubric
from shared.models import Role, School
from shared.prompts.rubric import Rubric, RubricError, list_rubrics, load_rubric_file

logger = logging.getLogger(__name__)

bp = Blueprint("rubrics", __name__)


def _school_id(schools: Sequence[School]) -> int | None:
    """The school whose own rubrics are listed: the caller's, or for a sysadmin the one picked (else the first)."""
    account = user()
    if account.role == Role.sysadmin:
        return ascii_int(request.args.get("school_id", "")) or (schools[0].id if schools else None)
    return account.school_id


def _render(errors: list[str], status: int = 200) -> Any:
    account = user()
    schools = db().scalars(visible_schools(account)).all() if is_admin(account) else []
    school_id = _school_id(schools)
    choices = rubric_choices(settings().data_dir, school_id)
    return render_template("rubrics/index.html", choices=choices, schools=schools, school_id=school_id,
                           errors=errors), status


@bp.get("/rubrics")
@login_required
def index() -> Any:
    return _render([])


def _visible_rubric(key: str) -> tuple[RubricChoice, Path, Rubric]:
    """A rubric the caller may read: a shipped one, or one of their school's (a sysadmin's: any school's)."""
    account = user()
    schools = db().scalars(visible_schools(account)).all() if account.role == Role.sysadmin else []
    choice = find_choice(rubric_choices(settings().data_dir, _school_id(schools)), key)
    if choice is None:
        abort(404, description="没有这个评分标准，或它不属于您的学校。")
    path = Path(choice.rubric_id) if choice.own else next(
        info.path for info in list_rubrics() if (info.id, info.version) == (choice.rubric_id, choice.rubric_version))
    return choice, path, load_rubric_file(path)


@bp.get("/rubrics/<key>")
@login_required
def show(key: str) -> Any:
    """The rubric in full: dimensions and their bands, deductions, caps, error types; a link to its YAML."""
    choice, _path, rubric = _visible_rubric(key)
    return render_template("rubrics/show.html", choice=choice, rubric=rubric,
                           school_id=request.args.get("school_id", ""))


@bp.get("/rubrics/<key>/download")
@login_required
def download(key: str) -> Any:
    """The rubric's YAML, to read or to start a school's own rubric from."""
    _choice, path, rubric = _visible_rubric(key)
    return send_file(path, as_attachment=True, download_name=f"{rubric.id}@{rubric.version}.yaml",
                     mimetype="application/x-yaml")


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
