"""双评 in the JSON API (/api/v1, bearer tokens): double-marking settings, the reader's queue, second reading,
arbitration, calibration and agreement, with the same checks and services as the pages."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request
from sqlalchemy.exc import IntegrityError

from services.web import calibration_store
from services.web import double_marking as dm
from services.web.access import get_assignment_or_404, get_essay_or_404
from services.web.api_auth import authenticate
from services.web.context import db
from services.web.guards import actor, user
from services.web.review import ReviewError, parse_scores
from services.web.times import api_time, person_zone
from services.web.views.assignments import rubric_or_none
from services.web.views.marking import RACE, essay_for_arbiter, visible_assignment_ids
from shared.agreement_report import GROUPINGS, Figures, grouped, pairs_for, threshold_for
from shared.models import Assignment, DoubleMarkCase, Grade

logger = logging.getLogger(__name__)

bp = Blueprint("marking_api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


def _error(message: str, status: int) -> Any:
    return jsonify(error=message, details=[message], status=status), status


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="请求体必须是 JSON 对象。")
    return data


def _settings_json(assignment: Assignment) -> dict[str, Any]:
    counts = dm.counts(db(), assignment)
    return {"assignment_id": assignment.id, "mode": assignment.double_marking,
            "share": assignment.double_marking_share, "selected": counts.selected,
            "awaiting_second": counts.awaiting_second, "awaiting_arbitration": counts.awaiting_arbitration,
            "settled": counts.settled}


def _reading_json(grade: Grade) -> dict[str, Any]:
    return {"version": grade.version, "reading": grade.reading or "model", "source": str(grade.source),
            "created_by": grade.created_by, "created_at": api_time(grade.created_at),
            "dimension_scores": grade.dimension_scores, "total": grade.total}


def _case_json(case: DoubleMarkCase) -> dict[str, Any]:
    return {"essay_id": case.essay_id, "status": str(case.status), "needs": case.needs, "totals": case.totals,
            "final_total": case.final_total, "final_rule": case.final_rule,
            "readings": [_reading_json(g) for g in dm.readings_of(db(), case.essay_id)]}


@bp.route("/assignments/<int:assignment_id>/double-marking", methods=["GET", "POST"])
def double_marking(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    if request.method == "POST":
        body = _body()
        try:
            mode, share = dm.parse_mode(body.get("mode"), body.get("share"))
        except ReviewError as exc:
            return _error(str(exc), 400)
        dm.set_mode(session, actor(), assignment, mode, share)
        session.commit()
    return jsonify(_settings_json(assignment))


@bp.get("/marking")
def marking_queue() -> Any:
    session = db()
    account = user()

    def items(queue: list[dm.QueueItem]) -> list[dict[str, Any]]:
        return [{"essay_id": i.essay_id, "assignment_id": i.assignment_id, "assignment_title": i.assignment_title,
                 "classroom_name": i.classroom_name, "student_name": i.student_name, "needs": i.needs,
                 "totals": list(i.totals)} for i in queue]

    return jsonify(second_reads=items(dm.my_second_reads(session, account)),
                   arbitrations=items(dm.my_arbitrations(session, account)))


@bp.post("/essays/<int:essay_id>/second-read")
def second_read(essay_id: int) -> Any:
    session = db()
    account = user()
    essay = get_essay_or_404(session, account, essay_id)
    rubric = rubric_or_none(essay.assignment)
    if rubric is None:
        return _error("评分标准无法加载，暂时不能二评。", 409)
    body = _body()
    scores_in = body.get("scores")
    try:
        scores = parse_scores(rubric, scores_in if isinstance(scores_in, dict) else {})
        comment = body.get("comment") if isinstance(body.get("comment"), str) else None
        result = dm.second_read(session, actor(), account, essay, rubric, scores, comment)
        calibration_store.refit_if_calibrated(session, actor(), essay.assignment, rubric)
        session.commit()
    except ReviewError as exc:
        session.rollback()
        return _error(str(exc), 400)
    except dm.ReadingConflict as exc:
        session.rollback()
        return _error(str(exc), 409)
    except IntegrityError:
        session.rollback()
        return _error(RACE, 409)
    return jsonify(_case_json(result.case)), 201


@bp.post("/essays/<int:essay_id>/arbitration")
def arbitration(essay_id: int) -> Any:
    session = db()
    account = user()
    essay = essay_for_arbiter(session, account, essay_id)
    case = dm.case_for(session, essay.id)
    rubric = rubric_or_none(essay.assignment)
    if case is None or rubric is None:
        return _error("这篇作文没有待仲裁的双评。", 409)
    body = _body()
    scores_in = body.get("scores")
    try:
        scores = parse_scores(rubric, scores_in if isinstance(scores_in, dict) else {})
        result = dm.arbitrate(session, actor(), account, case, rubric, scores)
        session.commit()
    except ReviewError as exc:
        session.rollback()
        return _error(str(exc), 400)
    except dm.ReadingConflict as exc:
        session.rollback()
        return _error(str(exc), 409)
    return jsonify(_case_json(result.case)), 201


@bp.route("/assignments/<int:assignment_id>/calibration", methods=["GET", "POST"])
def calibration(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    rubric = rubric_or_none(assignment)
    if rubric is None:
        return _error("评分标准无法加载。", 409)
    if request.method == "POST":
        if calibration_store.refit(session, actor(), assignment, rubric) is None:
            session.rollback()
            return _error("还没有样卷：请先盲评几篇建议的样卷，再拟合校准。", 409)
        session.commit()
    current = calibration_store.current(session, assignment)
    rows = calibration_store.class_rows(session, assignment, rubric, current)
    return jsonify(
        assignment_id=assignment.id, anchors=current.anchors if current else 0,
        method=current.method if current else None, maps=current.maps if current else None,
        suggested=calibration_store.suggestions(session, assignment),
        essays=[{"essay_id": r.essay_id, "student_name": r.student_name, "model_total": r.model_total,
                 "calibrated_total": r.calibrated_total, "second_read_total": r.teacher_total,
                 "current_total": r.current_total} for r in rows],
    )


def _figures_json(f: Figures, threshold: float) -> dict[str, Any]:
    return {"label": f.label, "pairs": f.pairs, "qwk": f.qwk, "bias": f.bias, "within_tolerance_rate": f.within_rate,
            "second_reads": f.second_reads, "arbitrations": f.arbitrations, "warning": f.below(threshold)}


@bp.get("/agreement")
def agreement() -> Any:
    session = db()
    account = user()
    pairs = pairs_for(session, visible_assignment_ids(session, account), person_zone())
    threshold = threshold_for(session, account.school_id)
    return jsonify(threshold=threshold, **{
        by: [_figures_json(f, threshold) for f in grouped(pairs, by)] for by in GROUPINGS
    })
