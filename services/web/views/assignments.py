"""Assignments: create one for a class, its page with live progress, the results table and regrading."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.web.access import get_assignment_or_404, get_classroom_or_404, is_admin
from services.web.context import db, settings
from services.web.dispatch import BROKER_DOWN, queue_assignment
from services.web.double_marking import blind_essay_ids, parse_mode, set_mode
from services.web.double_marking import counts as double_marking_counts
from services.web.forms import GENRES, validate_assignment
from services.web.guards import actor, login_required, user
from services.web.progress_view import class_workbook_json, progress_json, workers_view
from services.web.records import create_assignment
from services.web.results import class_results
from services.web.review import ReviewError, requeue
from services.web.rubric_store import assignment_rubric, rubric_choices
from shared.models import Assignment, Essay, abandoned_claim
from shared.models.base import utcnow
from shared.progress import assignment_progress
from shared.prompts.rubric import Rubric, RubricError, is_rubric_path

logger = logging.getLogger(__name__)

bp = Blueprint("assignments", __name__)


def rubric_or_none(assignment: Assignment) -> Rubric | None:
    try:
        return assignment_rubric(assignment)
    except RubricError as exc:
        logger.warning("assignment %s: %s", assignment.id, exc)
        return None


def rubric_label(assignment: Assignment, rubric: Rubric | None) -> str:
    if rubric is None:
        return f"{assignment.rubric_id} {assignment.rubric_version}（无法加载）"
    own = "本校：" if is_rubric_path(assignment.rubric_id) else ""
    return f"{own}{rubric.name}（{rubric.id} {rubric.version}）"


@bp.route("/classes/<int:classroom_id>/assignments/new", methods=["GET", "POST"])
@login_required
def new(classroom_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    choices = rubric_choices(settings().data_dir, classroom.school_id)
    if request.method == "GET":
        return render_template("assignments/new.html", classroom=classroom, choices=choices, genres=GENRES,
                               form={}, errors=[])
    data, errors = validate_assignment(request.form, choices)
    try:
        marking = parse_mode(request.form.get("double_marking"), request.form.get("double_marking_share"))
    except ReviewError as exc:
        data, errors = None, [*errors, str(exc)]
    if data is None:
        return render_template("assignments/new.html", classroom=classroom, choices=choices, genres=GENRES,
                               form=request.form, errors=errors), 400
    assignment = create_assignment(session, actor(), classroom, data)
    if marking[0] != "off":
        set_mode(session, actor(), assignment, *marking)
    session.commit()
    flash(f"已创建作业“{assignment.title}”。下一步：上传本班作文。", "ok")
    return redirect(url_for("uploads.form", assignment_id=assignment.id), 303)


@bp.get("/assignments/<int:assignment_id>")
@login_required
def show(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    rubric = rubric_or_none(assignment)
    return render_template(
        "assignments/show.html", assignment=assignment, classroom=assignment.classroom,
        rubric_label=rubric_label(assignment, rubric), progress=assignment_progress(session, assignment.id),
        double_marking=double_marking_counts(session, assignment),
        workbook=class_workbook_json(session, assignment.id, _workbook_url), **_workers_context(session),
    )


def _workers_context(session: Session) -> dict[str, Any]:
    view = workers_view(session, admin=is_admin(user()), lost_after_s=settings().worker_lost_after_s)
    return {"workers": view["workers"], "worker_notice": view["notice"]}


@bp.get("/assignments/<int:assignment_id>/progress.json")
@login_required
def progress(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    return jsonify(progress_json(session, assignment.id, admin=is_admin(user()),
                                 lost_after_s=settings().worker_lost_after_s, download_url=_workbook_url))


def _workbook_url(job_id: int) -> str:
    return url_for("reports.download", job_id=job_id)


@bp.get("/assignments/<int:assignment_id>/results")
@login_required
def results(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    rubric = rubric_or_none(assignment)
    table = class_results(session, assignment, rubric, sort=request.args.get("sort", "number"),
                          direction=request.args.get("dir", "asc"), blind=blind_essay_ids(session, user(), assignment))
    return render_template("assignments/results.html", assignment=assignment, classroom=assignment.classroom,
                           table=table, rubric_label=rubric_label(assignment, rubric))


@bp.post("/assignments/<int:assignment_id>/regrade")
@login_required
def regrade(assignment_id: int) -> Any:
    """Regrade the whole class (graded and failed essays), or only queue essays still waiting."""
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    if request.form.get("scope") == "waiting":
        # Besides re-sending what waits, take back essays whose grading task is gone (its lease ran out).
        abandoned = session.scalars(
            select(Essay.id).where(Essay.assignment_id == assignment.id, abandoned_claim(utcnow()))
        ).all()
        moved = len(requeue(session, actor(), abandoned, assignment_id=assignment.id))
    else:
        essay_ids = session.scalars(select(Essay.id).where(Essay.assignment_id == assignment.id)).all()
        moved = len(requeue(session, actor(), essay_ids, assignment_id=assignment.id))
        actor().record(session, "assignment.regrade", object_type="assignment", object_id=assignment.id,
                       essays=moved)
    session.commit()
    if not queue_assignment(assignment.id):
        flash(BROKER_DOWN, "error")
    elif moved:
        flash(f"已将 {moved} 篇作文重新排队评分；新的评分将作为新版本保存。", "ok")
    else:
        flash("已重新发送排队中的作文。", "ok")
    return redirect(url_for("assignments.show", assignment_id=assignment.id), 303)
