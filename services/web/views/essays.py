"""One essay: the highlighted text, scores with evidence, history; teacher override, accepting flags, regrade."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from services.web import double_marking as dm
from services.web.access import get_essay_or_404
from services.web.context import db
from services.web.dispatch import BROKER_DOWN, queue_essays
from services.web.double_marking import blind_essay_ids
from services.web.essay_view import SOURCE_NAMES, build_essay_view
from services.web.guards import actor, login_required, user
from services.web.results import STATUS_NAMES
from services.web.review import ReviewError, accept_flags, latest_grade, override_grade, parse_scores, requeue
from services.web.views.assignments import rubric_label, rubric_or_none
from shared.grades import is_withheld

logger = logging.getLogger(__name__)

bp = Blueprint("essays", __name__)
CONFIRM_REASON = "已复核提示注入标记，确认模型评分"


def _page(essay_id: int, *, errors: list[str] | None = None, form: Any = None, status: int = 200) -> Any:
    session = db()
    essay = get_essay_or_404(session, user(), essay_id)
    assignment = essay.assignment
    if status == 200 and essay.id in blind_essay_ids(session, user(), assignment):
        flash("这篇作文在等待二评：请先在盲评页面评分，评完后再显示模型分数。", "ok")
        return redirect(url_for("marking.second_read", essay_id=essay.id), 303)
    rubric = rubric_or_none(assignment)
    view = build_essay_view(session, essay, rubric)
    if status == 200:
        actor().record(session, "essay.view", object_type="essay", object_id=essay.id)
        session.commit()
    return render_template(
        "essays/show.html", view=view, essay=essay, assignment=assignment, classroom=assignment.classroom,
        rubric=rubric, rubric_label=rubric_label(assignment, rubric), status_names=STATUS_NAMES,
        source_names=SOURCE_NAMES, errors=errors or [], form=form or {},
    ), status


@bp.get("/essays/<int:essay_id>")
@login_required
def show(essay_id: int) -> Any:
    return _page(essay_id)


@bp.post("/essays/<int:essay_id>/override")
@login_required
def override(essay_id: int) -> Any:
    session = db()
    essay = get_essay_or_404(session, user(), essay_id)
    rubric = rubric_or_none(essay.assignment)
    if rubric is None:
        return _page(essay_id, errors=["评分标准无法加载，暂时不能改分。"], form=request.form, status=409)
    raw = {dim.key: request.form.get(f"score_{dim.key}", "") for dim in rubric.dimensions}
    comment = request.form.get("comment")
    try:
        scores = parse_scores(rubric, raw)
        grade = override_grade(session, actor(), essay, rubric, scores=scores, comment=comment,
                               reason=request.form.get("reason", ""))
        session.commit()
    except ReviewError as exc:
        session.rollback()
        return _page(essay_id, errors=[str(exc)], form=request.form, status=400)
    except IntegrityError:
        session.rollback()
        return _page(essay_id, errors=["同时有另一次评分写入，请刷新后重试。"], form=request.form, status=409)
    flash(f"已保存教师评分（第 {grade.version} 版，总分 {grade.total}）；之前的版本仍保留在历史中。", "ok")
    return redirect(url_for("essays.show", essay_id=essay.id), 303)


@bp.post("/essays/<int:essay_id>/accept")
@login_required
def accept(essay_id: int) -> Any:
    session = db()
    essay = get_essay_or_404(session, user(), essay_id)
    count = accept_flags(session, actor(), essay)
    withheld = latest_grade(session, essay.id)
    rubric = rubric_or_none(essay.assignment)
    confirmed = None
    if withheld is not None and is_withheld(withheld) and rubric is not None:
        # The teacher has read the flagged essay: the model's score, withheld until now, becomes theirs (a teacher
        # version with the same scores and total, so the history shows who confirmed it).
        confirmed = override_grade(session, actor(), essay, rubric, scores=withheld.dimension_scores, comment=None,
                                   reason=CONFIRM_REASON, total=withheld.total)
    session.commit()
    if confirmed is not None:
        flash(f"已确认并清除 {count} 条标记；模型评分 {confirmed.total} 分经您确认后生效"
              f"（第 {confirmed.version} 版）。", "ok")
    else:
        flash(f"已确认并清除 {count} 条标记。", "ok")
    return redirect(url_for("essays.show", essay_id=essay.id), 303)


@bp.post("/essays/<int:essay_id>/regrade")
@login_required
def regrade(essay_id: int) -> Any:
    session = db()
    essay = get_essay_or_404(session, user(), essay_id)
    moved = requeue(session, actor(), [essay.id], assignment_id=essay.assignment_id)
    session.commit()
    if not moved and dm.case_for(session, essay.id) is not None:
        flash("这篇作文已进入双评，以教师的评阅为准，不再由模型重新评分。", "error")
    elif not moved:
        flash("这篇作文正在排队或评分中，无需重新评分。", "error")
    elif queue_essays(moved):
        flash("已重新排队评分；新结果将作为新版本保存。", "ok")
    else:
        flash(BROKER_DOWN, "error")
    return redirect(url_for("essays.show", essay_id=essay.id), 303)
