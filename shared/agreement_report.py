"""Model–teacher agreement from the stored 双评 readings: per assignment, class and month, the QWK of the totals,
mean bias (model − teacher), the within-tolerance rate, and the counts of second reads and arbitrations.

A pair is an essay's second reading (``Grade.reading == "second"``, a teacher marking blind) and the model's grade
version just before it. The web's dashboard and the class/school workbooks call the same function, so the figures
recompute from the readings wherever they are shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.clock import in_zone, people_zone
from shared.models import AgreementSetting, Assignment, Classroom, Essay, Grade, GradeSource
from shared.prompts.rubric import RubricError, resolve_rubric
from shared.rater_agreement import mean_bias, quadratic_weighted_kappa

logger = logging.getLogger(__name__)

DEFAULT_QWK_THRESHOLD = 0.6
ARBITRATION_READINGS = ("third", "arbitration")


@dataclass(frozen=True)
class Pair:
    essay_id: int
    assignment_id: int
    assignment_title: str
    classroom_id: int
    classroom_name: str
    month: str  # YYYY-MM of the second reading
    model_total: int
    teacher_total: int
    tolerance: int
    max_total: int
    arbitrated: bool


@dataclass(frozen=True)
class Figures:
    label: str
    pairs: int
    qwk: float | None
    bias: float | None
    within_rate: float | None
    second_reads: int
    arbitrations: int

    def below(self, threshold: float) -> bool:
        return self.qwk is not None and self.qwk < threshold


def pairs_for(session: Session, assignment_ids: Sequence[int], zone: tzinfo | None = None) -> list[Pair]:
    """Every second reading of the given assignments with the model reading it was compared with."""
    if not assignment_ids:
        return []
    rows = session.execute(
        select(Grade, Essay.assignment_id).join(Essay, Grade.essay_id == Essay.id)
        .where(Essay.assignment_id.in_(list(assignment_ids)))
        .where((Grade.source == GradeSource.model) | Grade.reading.is_not(None))
        .order_by(Grade.essay_id, Grade.version)
    ).all()
    by_essay: dict[int, list[Grade]] = {}
    for grade, _ in rows:
        by_essay.setdefault(grade.essay_id, []).append(grade)
    essay_assignment = {grade.essay_id: assignment_id for grade, assignment_id in rows}
    assignments = {a.id: a for a in session.scalars(select(Assignment).where(Assignment.id.in_(list(assignment_ids))))}
    classrooms = {c.id: c for c in session.scalars(
        select(Classroom).where(Classroom.id.in_({a.classroom_id for a in assignments.values()})))}
    tolerances: dict[int, tuple[int, int]] = {}
    pairs = []
    for essay_id, grades in by_essay.items():
        second = next((g for g in grades if g.reading == "second"), None)
        model = [g for g in grades if g.source == GradeSource.model and second and g.version < second.version]
        if second is None or not model:
            continue
        assignment = assignments[essay_assignment[essay_id]]
        if assignment.id not in tolerances:
            try:
                rubric = resolve_rubric(assignment.rubric_id, assignment.rubric_version)
                tolerances[assignment.id] = (rubric.tolerance_for(), rubric.total)
            except RubricError as exc:
                logger.warning("agreement: assignment %s skipped: %s", assignment.id, exc)
                tolerances[assignment.id] = (-1, 0)
        tolerance, max_total = tolerances[assignment.id]
        if tolerance < 0:
            continue
        classroom = classrooms[assignment.classroom_id]
        pairs.append(Pair(
            essay_id, assignment.id, assignment.title, classroom.id, classroom.name,
            in_zone(second.created_at, zone or people_zone()).strftime("%Y-%m"), model[-1].total, second.total,
            tolerance, max_total,
            any(g.reading in ARBITRATION_READINGS for g in grades),
        ))
    return pairs


def figures(label: str, pairs: Sequence[Pair]) -> Figures:
    teacher = [p.teacher_total for p in pairs]
    model = [p.model_total for p in pairs]
    high = max((p.max_total for p in pairs), default=0)
    within = sum(abs(p.model_total - p.teacher_total) <= p.tolerance for p in pairs)
    return Figures(
        label=label, pairs=len(pairs),
        qwk=quadratic_weighted_kappa(teacher, model, low=0, high=high) if pairs else None,
        bias=mean_bias(teacher, model), within_rate=within / len(pairs) if pairs else None,
        second_reads=len(pairs), arbitrations=sum(p.arbitrated for p in pairs),
    )


GROUPINGS: dict[str, tuple[str, Callable[[Pair], tuple[object, str]]]] = {
    "assignment": ("作业", lambda p: (p.assignment_id, f"{p.classroom_name} · {p.assignment_title}")),
    "classroom": ("班级", lambda p: (p.classroom_id, p.classroom_name)),
    "month": ("月份", lambda p: (p.month, p.month)),
}


def grouped(pairs: Sequence[Pair], by: str) -> list[Figures]:
    """Figures per group (assignment, classroom or month), in the groups' order."""
    _title, key = GROUPINGS[by]
    groups: dict[object, tuple[str, list[Pair]]] = {}
    for pair in pairs:
        group, label = key(pair)
        groups.setdefault(group, (label, []))[1].append(pair)
    return [figures(label, members) for _group, (label, members) in sorted(groups.items(), key=lambda kv: str(kv[0]))]


def threshold_for(session: Session, school_id: int | None) -> float:
    """The school's QWK warning threshold (``DEFAULT_QWK_THRESHOLD`` until an admin sets one)."""
    if school_id is None:
        return DEFAULT_QWK_THRESHOLD
    setting = session.get(AgreementSetting, school_id)
    return setting.qwk_threshold if setting is not None else DEFAULT_QWK_THRESHOLD
