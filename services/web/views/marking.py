"""双评 pages: an assignment's double-marking setting, the blind second reading, 三评/终评, the reader's queue,
样卷 calibration, the agreement dashboard and the school's threshold, and who is 备课组长 of a class."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.web import calibration_store
from services.web import double_marking as dm
from services.web.access import (
    classroom_scope,
    get_assignment_or_404,
    get_classroom_or_404,
    get_essay_or_404,
    is_admin,
)
from services.web.context import db
from services.web.guards import actor, admin_required, login_required, user
from services.web.numbers import ascii_int
from services.web.review import ReviewError, parse_scores
from services.web.times import person_zone
from services.web.views.assignments import rubric_or_none
from shared.agreement_report import GROUPINGS, grouped, pairs_for, threshold_for
from shared.models import (
    AgreementSetting,
    Assignment,
    ClassRole,
    Classroom,
    ClassroomRole,
    Essay,
    Role,
    User,
)

logger = logging.getLogger(__name__)

bp = Blueprint("marking", __name__)

NO_RIGHT = "只有本班的备课组长或学校管理员可以三评/终评。"
RACE = "另一位教师刚刚提交了这篇作文的二评；您的评分未保存，请刷新后查看。"


def essay_for_arbiter(session: Session, account: User, essay_id: int) -> Essay:
    """The essay, for a user who may arbitrate in its class: 404 where the user cannot see it at all, 403 where they
    can see it but have no right to arbitrate."""
    essay = session.get(Essay, essay_id)
    if essay is None:
        abort(404)
    classroom = essay.assignment.classroom
    if dm.may_arbitrate(session, account, classroom):
        return essay
    visible = session.scalar(select(Classroom.id).where(Classroom.id == classroom.id, classroom_scope(account)))
    if visible is not None:
        abort(403, description=NO_RIGHT)
    abort(404)


# --- settings -------------------------------------------------------------------------------------------------


@bp.route("/assignments/<int:assignment_id>/double-marking", methods=["GET", "POST"])
@login_required
def settings_page(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        try:
            mode, share = dm.parse_mode(request.form.get("mode"), request.form.get("share"))
            dm.set_mode(session, actor(), assignment, mode, share)
            session.commit()
            flash(f"双评方式已设为：{dm.MODE_NAMES[mode]}" + (f"（{share}%）" if share else "") + "。", "ok")
            return redirect(url_for("marking.settings_page", assignment_id=assignment.id), 303)
        except ReviewError as exc:
            session.rollback()
            errors, status = [str(exc)], 400
    rubric = rubric_or_none(assignment)
    return render_template(
        "marking/settings.html", assignment=assignment, classroom=assignment.classroom, errors=errors,
        counts=dm.counts(session, assignment), mode_names=dm.MODE_NAMES,
        tolerance=rubric.tolerance_for() if rubric else None,
    ), status


# --- second reading -------------------------------------------------------------------------------------------


def _second_read_page(essay: Essay, *, errors: list[str] | None = None, form: Any = None, status: int = 200) -> Any:
    session = db()
    assignment = essay.assignment
    rubric = rubric_or_none(assignment)
    case = dm.case_for(session, essay.id)
    return render_template(
        "marking/second_read.html", essay=essay, assignment=assignment, classroom=assignment.classroom,
        rubric=rubric, case=case, readings=dm.readings_of(session, essay.id) if case else [],
        reading_names=dm.READING_NAMES, rule_names=dm.RULE_NAMES, needs_names=dm.NEEDS_NAMES,
        errors=errors or [], form=form or {},
    ), status


@bp.route("/essays/<int:essay_id>/second-read", methods=["GET", "POST"])
@login_required
def second_read(essay_id: int) -> Any:
    session = db()
    account = user()
    essay = get_essay_or_404(session, account, essay_id)
    if request.method == "GET":
        return _second_read_page(essay)
    rubric = rubric_or_none(essay.assignment)
    if rubric is None:
        return _second_read_page(essay, errors=["评分标准无法加载，暂时不能二评。"], status=409)
    raw = {dim.key: request.form.get(f"score_{dim.key}", "") for dim in rubric.dimensions}
    try:
        scores = parse_scores(rubric, raw)
        result = dm.second_read(session, actor(), account, essay, rubric, scores, request.form.get("comment"))
        calibration_store.refit_if_calibrated(session, actor(), essay.assignment, rubric)
        session.commit()
    except ReviewError as exc:
        session.rollback()
        return _second_read_page(essay, errors=[str(exc)], form=request.form, status=400)
    except dm.ReadingConflict as exc:
        session.rollback()
        return _second_read_page(essay, errors=[str(exc)], status=409)
    except IntegrityError:
        session.rollback()
        return _second_read_page(essay, errors=[RACE], status=409)
    if result.final is not None:
        flash(f"二评已保存：模型 {result.model_total} 分，您 {result.reading.total} 分，在误差范围内，"
              f"最终分 {result.final.total} 分。", "ok")
    else:
        flash(f"二评已保存：模型 {result.model_total} 分，您 {result.reading.total} 分，超出误差，"
              f"已交{dm.NEEDS_NAMES.get(str(result.case.needs), '仲裁')}。", "ok")
    return redirect(url_for("marking.second_read", essay_id=essay.id), 303)


# --- arbitration ----------------------------------------------------------------------------------------------


def _arbitrate_page(essay: Essay, *, errors: list[str] | None = None, status: int = 200) -> Any:
    session = db()
    return render_template(
        "marking/arbitrate.html", essay=essay, assignment=essay.assignment, classroom=essay.assignment.classroom,
        rubric=rubric_or_none(essay.assignment), case=dm.case_for(session, essay.id),
        readings=dm.readings_of(session, essay.id), reading_names=dm.READING_NAMES, rule_names=dm.RULE_NAMES,
        needs_names=dm.NEEDS_NAMES, errors=errors or [],
    ), status


@bp.route("/essays/<int:essay_id>/arbitrate", methods=["GET", "POST"])
@login_required
def arbitrate(essay_id: int) -> Any:
    session = db()
    account = user()
    essay = essay_for_arbiter(session, account, essay_id)
    if request.method == "GET":
        return _arbitrate_page(essay)
    case = dm.case_for(session, essay.id)
    rubric = rubric_or_none(essay.assignment)
    if case is None or rubric is None:
        return _arbitrate_page(essay, errors=["这篇作文没有待仲裁的双评。"], status=409)
    raw = {dim.key: request.form.get(f"score_{dim.key}", "") for dim in rubric.dimensions}
    try:
        scores = parse_scores(rubric, raw)
        result = dm.arbitrate(session, actor(), account, case, rubric, scores, request.form.get("comment"))
        session.commit()
    except ReviewError as exc:
        session.rollback()
        return _arbitrate_page(essay, errors=[str(exc)], status=400)
    except dm.ReadingConflict as exc:
        session.rollback()
        return _arbitrate_page(essay, errors=[str(exc)], status=409)
    if result.final is not None:
        flash(f"已保存{dm.READING_NAMES[str(result.reading.reading)]}，最终分 {result.final.total} 分"
              f"（{dm.RULE_NAMES.get(str(result.case.final_rule), '')}）。", "ok")
    else:
        flash(f"已保存三评，仍超出误差，已交{dm.NEEDS_NAMES.get(str(result.case.needs), '终评')}。", "ok")
    return redirect(url_for("marking.arbitrate", essay_id=essay.id), 303)


# --- queue ----------------------------------------------------------------------------------------------------


@bp.get("/marking")
@login_required
def queue() -> Any:
    session = db()
    account = user()
    return render_template("marking/queue.html", second_reads=dm.my_second_reads(session, account),
                           arbitrations=dm.my_arbitrations(session, account), needs_names=dm.NEEDS_NAMES)


# --- calibration ----------------------------------------------------------------------------------------------


@bp.route("/assignments/<int:assignment_id>/calibration", methods=["GET", "POST"])
@login_required
def calibration(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    rubric = rubric_or_none(assignment)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        fitted = calibration_store.refit(session, actor(), assignment, rubric) if rubric else None
        if fitted is None:
            errors, status = ["还没有样卷：请先盲评几篇建议的样卷，再拟合校准。"], 409
            session.rollback()
        else:
            session.commit()
            flash(f"已用 {fitted.anchors} 篇样卷拟合校准（{calibration_store.method_name(fitted)}）。", "ok")
            return redirect(url_for("marking.calibration", assignment_id=assignment.id), 303)
    current = calibration_store.current(session, assignment)
    rows = calibration_store.class_rows(session, assignment, rubric, current) if rubric else []
    anchors = calibration_store.anchors(session, assignment)
    suggested = set(calibration_store.suggestions(session, assignment))
    return render_template(
        "marking/calibration.html", assignment=assignment, classroom=assignment.classroom, rubric=rubric,
        calibration=current, method_name=calibration_store.method_name(current) if current else None, rows=rows,
        anchor_count=len(anchors), suggested=suggested, errors=errors,
    ), status


# --- agreement ------------------------------------------------------------------------------------------------


def visible_assignment_ids(session: Session, account: User) -> list[int]:
    return list(session.scalars(select(Assignment.id).join(Classroom, Assignment.classroom_id == Classroom.id)
                                .where(classroom_scope(account))))


@bp.get("/agreement")
@login_required
def agreement() -> Any:
    session = db()
    account = user()
    pairs = pairs_for(session, visible_assignment_ids(session, account), person_zone())
    threshold = threshold_for(session, account.school_id)
    tables = [(title, grouped(pairs, by)) for by, (title, _key) in GROUPINGS.items()]
    return render_template("marking/agreement.html", tables=tables, threshold=threshold,
                           can_set=account.role == Role.school_admin)


@bp.post("/agreement/threshold")
@admin_required
def threshold() -> Any:
    session = db()
    account = user()
    raw = request.form.get("threshold", "").strip()
    try:
        value = float(raw)
    except ValueError:
        value = -2.0
    if account.school_id is None:
        abort(404)
    if not -1.0 <= value <= 1.0:
        flash(f"阈值必须是 -1 到 1 之间的数（QWK），实际为 {raw!r}。", "error")
        return redirect(url_for("marking.agreement"), 303)
    setting = session.get(AgreementSetting, account.school_id)
    if setting is None:
        setting = AgreementSetting(school_id=account.school_id, qwk_threshold=value)
        session.add(setting)
    setting.qwk_threshold, setting.updated_by = value, account.id
    actor().record(session, "agreement.threshold", object_type="school", object_id=account.school_id, value=value)
    session.commit()
    flash(f"一致性预警阈值已设为 QWK {value:.2f}。", "ok")
    return redirect(url_for("marking.agreement"), 303)


# --- 备课组长 ---------------------------------------------------------------------------------------------------


@bp.route("/classes/<int:classroom_id>/leads", methods=["GET", "POST"])
@admin_required
def leads(classroom_id: int) -> Any:
    session = db()
    classroom = get_classroom_or_404(session, user(), classroom_id)
    status = 200
    if request.method == "POST":
        candidate_id = ascii_int(request.form.get("user_id", ""), minimum=1)
        candidate = session.get(User, candidate_id) if candidate_id is not None else None
        if candidate is None or candidate.school_id != classroom.school_id or candidate.role != Role.teacher:
            flash("请选择本校的一位教师。", "error")
            status = 400
        else:
            existing = session.scalar(select(ClassroomRole).where(
                ClassroomRole.classroom_id == classroom.id, ClassroomRole.user_id == candidate.id,
                ClassroomRole.role == ClassRole.lead))
            if request.form.get("action") == "remove":
                if existing is not None:
                    session.delete(existing)
                actor().record(session, "classroom.lead_removed", object_type="classroom", object_id=classroom.id,
                               user_id=candidate.id)
                flash(f"已取消 {candidate.display_name} 的备课组长权限。", "ok")
            elif existing is None:
                session.add(ClassroomRole(classroom_id=classroom.id, user_id=candidate.id, role=ClassRole.lead))
                actor().record(session, "classroom.lead_added", object_type="classroom", object_id=classroom.id,
                               user_id=candidate.id)
                flash(f"{candidate.display_name} 已是本班的备课组长，可以三评/终评。", "ok")
            session.commit()
            return redirect(url_for("marking.leads", classroom_id=classroom.id), 303)
    current = session.scalars(select(User).join(ClassroomRole, ClassroomRole.user_id == User.id).where(
        ClassroomRole.classroom_id == classroom.id, ClassroomRole.role == ClassRole.lead)).all()
    teachers = session.scalars(select(User).where(User.school_id == classroom.school_id, User.role == Role.teacher,
                                                  User.is_active.is_(True)).order_by(User.display_name)).all()
    return render_template("marking/leads.html", classroom=classroom, leads=current, teachers=teachers,
                           is_admin=is_admin(user())), status


