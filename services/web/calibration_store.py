"""An assignment's 样卷 calibration in the database: the anchors (essays with a model reading and a blind second
reading), fitting and storing the per-dimension maps, and the class's calibrated scores beside the raw ones."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.web.actor import Actor
from shared.calibration import METHOD_NAMES, Anchor, calibrated_total, fit, suggest_anchors
from shared.grades import effective_grades
from shared.models import Assignment, Calibration, Essay, EssayStatus, Grade, GradeSource
from shared.models.base import utcnow
from shared.prompts.rubric import Rubric

SUGGESTED_ANCHORS = 8


@dataclass(frozen=True)
class CalibratedRow:
    essay_id: int
    student_name: str
    model_total: int
    calibrated_total: int | None
    teacher_total: int | None  # the blind second reading, where there is one
    current_total: int  # the grade that counts now (final score after 双评, or an override)


def anchors(session: Session, assignment: Assignment) -> list[tuple[int, Anchor]]:
    """(essay id, anchor) for every essay of the assignment with a second reading, paired with the model version
    just before it."""
    grades = session.scalars(
        select(Grade).join(Essay, Grade.essay_id == Essay.id).where(Essay.assignment_id == assignment.id)
        .where((Grade.source == GradeSource.model) | (Grade.reading == "second"))
        .order_by(Grade.essay_id, Grade.version)
    )
    model: dict[int, Grade] = {}
    found: list[tuple[int, Anchor]] = []
    for grade in grades:
        if grade.reading == "second" and grade.essay_id in model:
            found.append((grade.essay_id, Anchor(model[grade.essay_id].dimension_scores, grade.dimension_scores)))
        elif grade.source == GradeSource.model:
            model[grade.essay_id] = grade
    return found


def refit(session: Session, actor: Actor, assignment: Assignment, rubric: Rubric) -> Calibration | None:
    """Fit on every anchor so far and store it (replacing the earlier fit); None without anchors."""
    pairs = anchors(session, assignment)
    if not pairs:
        return None
    method, maps = fit([anchor for _, anchor in pairs], rubric)
    calibration = session.scalar(select(Calibration).where(Calibration.assignment_id == assignment.id))
    if calibration is None:
        calibration = Calibration(assignment_id=assignment.id, anchors=0, method=method, maps={})
        session.add(calibration)
    calibration.anchors, calibration.method, calibration.maps = len(pairs), method, maps
    calibration.fitted_by, calibration.fitted_at = actor.user_id, utcnow()
    actor.record(session, "calibration.fit", object_type="assignment", object_id=assignment.id, anchors=len(pairs),
                 method=method)
    session.flush()
    return calibration


def refit_if_calibrated(session: Session, actor: Actor, assignment: Assignment, rubric: Rubric) -> None:
    """A new second reading is a new anchor: refit an assignment that has been calibrated."""
    if session.scalar(select(Calibration.id).where(Calibration.assignment_id == assignment.id)) is not None:
        refit(session, actor, assignment, rubric)


def current(session: Session, assignment: Assignment) -> Calibration | None:
    return session.scalar(select(Calibration).where(Calibration.assignment_id == assignment.id))


def method_name(calibration: Calibration) -> str:
    return METHOD_NAMES.get(calibration.method, calibration.method)


def _model_grades(session: Session, assignment: Assignment) -> dict[int, Grade]:
    latest: dict[int, Grade] = {}
    for grade in session.scalars(
        select(Grade).join(Essay, Grade.essay_id == Essay.id)
        .where(Essay.assignment_id == assignment.id, Essay.status == EssayStatus.graded,
               Grade.source == GradeSource.model).order_by(Grade.version)
    ):
        latest[grade.essay_id] = grade
    return latest


def suggestions(session: Session, assignment: Assignment) -> list[int]:
    """~8 essays spread over the model's score range that have no second reading yet."""
    done = {essay_id for essay_id, _ in anchors(session, assignment)}
    totals = {essay_id: g.total for essay_id, g in _model_grades(session, assignment).items() if essay_id not in done}
    return suggest_anchors(totals, max(SUGGESTED_ANCHORS - len(done), 0)) if len(done) < SUGGESTED_ANCHORS else []


def class_rows(session: Session, assignment: Assignment, rubric: Rubric,
               calibration: Calibration | None) -> list[CalibratedRow]:
    """Each graded essay: the raw model total, the calibrated total (kept apart, never overwriting), the blind
    second reading and the grade that counts."""
    model = _model_grades(session, assignment)
    teacher = {essay_id: anchor for essay_id, anchor in anchors(session, assignment)}
    counting = effective_grades(session, list(model))
    essays = {e.id: e for e in session.scalars(select(Essay).where(Essay.id.in_(list(model))))}
    rows = []
    for essay_id in sorted(model, key=lambda i: (essays[i].student.student_number or "", essays[i].student.name)):
        grade = model[essay_id]
        deductions = sum(d.points for d in grade.deductions)
        calibrated = (calibrated_total(calibration.maps, grade.dimension_scores, deductions, rubric)
                      if calibration is not None else None)
        second = teacher.get(essay_id)
        teacher_total = None
        if second is not None:
            teacher_total = min(max(sum(second.teacher.values()) + deductions, 0), rubric.total)
        rows.append(CalibratedRow(essay_id, essays[essay_id].student.name, grade.total, calibrated, teacher_total,
                                  counting[essay_id].total))
    return rows
