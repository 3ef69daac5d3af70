"""A student's training plan computed from the class's graded history (no model involved).

The weakest dimensions relative to the class (gap between the student's and the class's mean score rate, each
score divided by its dimension's maximum), the error types that recur across the student's essays, and the trend
of the total. Focus areas map to exercises from the versioned catalog; ``narrative`` adds the model's words.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.worker.plans.catalog import Exercise, ExerciseCatalog, load_catalog
from services.worker.reports.queries import HistoryEssay, class_history, student_classroom
from services.worker.reports.rubric_view import RubricView, rubric_view
from services.worker.reports.stats import slope
from shared.models import Assignment, Essay

logger = logging.getLogger(__name__)

WEAK_GAP = 0.05  # a dimension 5 points in 100 under the class mean is a weakness
MAX_DIMENSION_FOCUS = 2
MAX_ERROR_FOCUS = 2
RECURRING_COUNT = 2
WORD_ERROR_TYPES = frozenset({"错别字", "用词不当"})
MAX_WORD_EXAMPLES = 8
MAX_OTHER_EXAMPLES = 3
TREND_STEP = 2.0  # percentage points of the total per essay that count as rising or falling
SEVERE_GAP = 0.15  # this far under the class mean, every catalog exercise of the dimension is assigned
STRENGTH_GAP = 0.03  # a dimension this far above the class mean is named as a strength


@dataclass(frozen=True)
class DimensionStanding:
    key: str
    name: str
    student_rate: float
    class_rate: float
    class_std: float

    @property
    def gap(self) -> float:
        """Student minus class mean score rate (fractions of the dimension's maximum)."""
        return self.student_rate - self.class_rate

    @property
    def z(self) -> float:
        return self.gap / self.class_std if self.class_std else 0.0


@dataclass(frozen=True)
class ErrorPattern:
    type: str
    count: int
    essays: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Trend:
    slope: float  # percentage points of the total score rate per essay
    first: float
    last: float

    @property
    def direction(self) -> str:
        if self.slope >= TREND_STEP:
            return "上升"
        if self.slope <= -TREND_STEP:
            return "下降"
        return "平稳"


@dataclass(frozen=True)
class FocusArea:
    kind: str  # "dimension" or "error"
    key: str
    label: str
    reason: str
    exercises: tuple[Exercise, ...]
    examples: tuple[str, ...] = ()
    goal: str = ""  # the student's own target for the next essay, from their numbers

    def as_json(self, catalog_version: str) -> dict[str, Any]:
        return {
            "kind": self.kind, "key": self.key, "label": self.label, "reason": self.reason,
            "exercises": [e.as_json() for e in self.exercises],
            "examples": list(self.examples), "goal": self.goal, "catalog_version": catalog_version,
        }


@dataclass(frozen=True)
class PlanDraft:
    """Everything a plan says except the model's narrative."""

    student_id: int
    essay_ids: tuple[int, ...]
    standings: tuple[DimensionStanding, ...]  # weakest first
    errors: tuple[ErrorPattern, ...]  # most frequent first
    trend: Trend | None
    focus_areas: tuple[FocusArea, ...]
    catalog_version: str

    def focus_json(self) -> list[dict[str, Any]]:
        return [area.as_json(self.catalog_version) for area in self.focus_areas]

    @property
    def strength(self) -> DimensionStanding | None:
        """The dimension furthest above the class mean, when it is at least ``STRENGTH_GAP`` above."""
        best = max(self.standings, key=lambda s: (s.gap, s.student_rate), default=None)
        return best if best is not None and best.gap >= STRENGTH_GAP else None


# --- the computation -----------------------------------------------------------------------------------


def _views(history: Sequence[HistoryEssay]) -> dict[tuple[str, str], RubricView]:
    by_rubric: dict[tuple[str, str], list[dict[str, int]]] = defaultdict(list)
    for essay in history:
        by_rubric[(essay.rubric_id, essay.rubric_version)].append(essay.grade.scores)
    return {ref: rubric_view(ref[0], ref[1], scores) for ref, scores in by_rubric.items()}


def _rates(essay: HistoryEssay, view: RubricView) -> dict[str, float]:
    rates = {}
    for key, score in essay.grade.scores.items():
        dim = view.dimension(key)
        if dim is not None and dim.max:
            rates[key] = score / dim.max
    return rates


def _total_rate(essay: HistoryEssay, view: RubricView) -> float:
    top = view.total or sum(dim.max for dim in view.dimensions) or 1
    return 100.0 * essay.grade.total / top


def _standings(
    mine: Sequence[HistoryEssay], history: Sequence[HistoryEssay], views: dict[tuple[str, str], RubricView]
) -> list[DimensionStanding]:
    """Each dimension the student was scored on, against the class on the same assignments; weakest first."""
    assignments = {essay.assignment_id for essay in mine}
    student: dict[str, list[float]] = defaultdict(list)
    group: dict[str, list[float]] = defaultdict(list)
    names: dict[str, str] = {}
    for essay in history:
        if essay.assignment_id not in assignments:
            continue
        view = views[(essay.rubric_id, essay.rubric_version)]
        for key, rate in _rates(essay, view).items():
            group[key].append(rate)
            if key not in names:
                names[key] = next(dim.name for dim in view.dimensions if dim.key == key)
            if essay.student_id == mine[0].student_id:
                student[key].append(rate)
    standings = [
        DimensionStanding(key, names[key], statistics.fmean(rates), statistics.fmean(group[key]),
                          statistics.pstdev(group[key]))
        for key, rates in student.items()
    ]
    return sorted(standings, key=lambda s: (s.gap, s.student_rate, s.key))


def _format_example(original: str, suggestion: str, count: int) -> str:
    text = f"{original}→{suggestion}" if suggestion and suggestion != original else original
    return f"{text}（{count} 次）" if count > 1 else text


def _error_patterns(mine: Sequence[HistoryEssay], type_order: Sequence[str]) -> list[ErrorPattern]:
    counts: Counter[str] = Counter()
    essays: Counter[str] = Counter()
    pairs: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for essay in mine:
        seen = set()
        for error in essay.grade.errors:
            counts[error.type] += 1
            seen.add(error.type)
            pairs[error.type][(error.original.strip(), error.suggestion.strip())] += 1
        essays.update(seen)
    rank = {name: index for index, name in enumerate(type_order)}
    patterns = []
    for error_type, count in counts.items():
        limit = MAX_WORD_EXAMPLES if error_type in WORD_ERROR_TYPES else MAX_OTHER_EXAMPLES
        # Counter.most_common keeps first-seen order among equals: repeated mistakes lead.
        examples = tuple(_format_example(o, s, n) for (o, s), n in pairs[error_type].most_common(limit) if o)
        patterns.append(ErrorPattern(error_type, count, essays[error_type], examples))
    return sorted(patterns, key=lambda p: (-p.count, -p.essays, rank.get(p.type, len(rank)), p.type))


def _trend(mine: Sequence[HistoryEssay], views: dict[tuple[str, str], RubricView]) -> Trend | None:
    if len(mine) < 2:
        return None
    rates = [_total_rate(essay, views[(essay.rubric_id, essay.rubric_version)]) for essay in mine]
    value = slope(rates)
    return Trend(value, rates[0], rates[-1]) if value is not None else None


def _dimension_focus(standing: DimensionStanding, catalog: ExerciseCatalog) -> FocusArea:
    if standing.gap < 0:
        reason = (
            f"平均得分率 {standing.student_rate:.0%}，低于班级平均 {standing.class_rate:.0%}"
            f"（差 {-standing.gap * 100:.0f} 个百分点）"
        )
    else:
        reason = (
            f"平均得分率 {standing.student_rate:.0%}，是各维度中相对最弱的一项"
            f"（班级平均 {standing.class_rate:.0%}）"
        )
    # A mild weakness gets the first exercise; a severe one every exercise the catalog lists for the dimension.
    listed = catalog.for_dimension(standing.key)
    chosen = listed if standing.gap <= -SEVERE_GAP else listed[:1]
    exercises = tuple(e.filled(standing.name, "") for e in chosen)
    target = standing.class_rate if standing.gap < 0 else min(1.0, standing.student_rate + 0.1)
    goal = f"下一篇{standing.name}得分率从 {standing.student_rate:.0%} 提高到 {target:.0%} 以上"
    return FocusArea("dimension", standing.key, standing.name, reason, exercises, goal=goal)


def _error_focus(pattern: ErrorPattern, essay_count: int, catalog: ExerciseCatalog) -> FocusArea:
    if essay_count > 1:
        reason = f"{pattern.essays} 篇作文中共出现 {pattern.count} 处"
    else:
        reason = f"本篇作文中出现 {pattern.count} 处"
    examples = "；".join(pattern.examples)
    exercises = tuple(e.filled(pattern.type, examples) for e in catalog.for_error_type(pattern.type))
    per_essay = pattern.count / max(1, essay_count)
    goal = f"下一篇{pattern.type}不超过 {int(per_essay // 2)} 处" if per_essay >= 2 else f"下一篇不再出现{pattern.type}"
    return FocusArea("error", pattern.type, pattern.type, reason, exercises, pattern.examples, goal=goal)


def draft_from_history(
    student_id: int, history: Sequence[HistoryEssay], catalog: ExerciseCatalog
) -> PlanDraft | None:
    """The plan for one student from the class's graded history; None when the student has no graded essay.

    Focus areas: the dimensions at least ``WEAK_GAP`` under the class mean (or else the relatively weakest
    one), weakest first, then the error types seen at least ``RECURRING_COUNT`` times, most frequent first.
    """
    mine = sorted(
        (essay for essay in history if essay.student_id == student_id),
        key=lambda e: (e.assignment_created_at, e.assignment_id),
    )
    if not mine:
        return None
    views = _views(history)
    standings = _standings(mine, history, views)
    type_order = [t for ref in dict.fromkeys((e.rubric_id, e.rubric_version) for e in mine)
                  for t in views[ref].error_types]
    patterns = _error_patterns(mine, type_order)
    weak = [s for s in standings if s.gap <= -WEAK_GAP][:MAX_DIMENSION_FOCUS] or standings[:1]
    recurring = [p for p in patterns if p.count >= RECURRING_COUNT][:MAX_ERROR_FOCUS]
    focus = [_dimension_focus(s, catalog) for s in weak]
    focus += [_error_focus(p, len(mine), catalog) for p in recurring]
    return PlanDraft(
        student_id=student_id,
        essay_ids=tuple(essay.essay_id for essay in mine),
        standings=tuple(standings),
        errors=tuple(patterns),
        trend=_trend(mine, views),
        focus_areas=tuple(focus),
        catalog_version=catalog.version,
    )


def build_plan(session: Session, student_id: int) -> PlanDraft | None:
    """The plan for one student (no model involved); None for a student without graded essays."""
    classroom_id = student_classroom(session, student_id)
    if classroom_id is None:
        return None
    return draft_from_history(student_id, class_history(session, classroom_id), load_catalog())


def build_plans_for_assignment(session: Session, assignment_id: int) -> list[PlanDraft]:
    """Plans for every student with an essay in the assignment; the class history is read once."""
    classroom_id = session.scalar(select(Assignment.classroom_id).where(Assignment.id == assignment_id))
    if classroom_id is None:
        return []
    student_ids = session.scalars(
        select(Essay.student_id).where(Essay.assignment_id == assignment_id).order_by(Essay.student_id)
    ).all()
    history = class_history(session, classroom_id)
    catalog = load_catalog()
    drafts = (draft_from_history(student_id, history, catalog) for student_id in student_ids)
    return [draft for draft in drafts if draft is not None]
