"""Personalised training plans from a student's graded history.

A plan is computed, not generated: the weakest dimensions relative to the class (gap between the
student's and the class's mean score rate, each score divided by its dimension's maximum), the error
types that recur across the student's essays, and the trend of the total. Focus areas map to exercises
from the versioned catalog. Only the short narrative for the teacher comes from the model, written from
the plan's facts (never names or essay text) under a small JSON schema.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.worker.reports.catalog import Exercise, ExerciseCatalog, load_catalog
from services.worker.reports.queries import HistoryEssay, class_history, student_classroom
from services.worker.reports.rubric_view import RubricView, rubric_view
from services.worker.reports.stats import slope
from shared.models import Assignment, Essay, TrainingPlan, transaction

if TYPE_CHECKING:
    from services.worker.pipeline import EngineLike

logger = logging.getLogger(__name__)

NARRATIVE_MAX_CHARS = 200
NARRATIVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"narrative": {"type": "string", "minLength": 1, "maxLength": NARRATIVE_MAX_CHARS}},
    "required": ["narrative"],
    "additionalProperties": False,
}
WEAK_GAP = 0.05  # a dimension 5 points in 100 under the class mean is a weakness
MAX_DIMENSION_FOCUS = 2
MAX_ERROR_FOCUS = 2
RECURRING_COUNT = 2
WORD_ERROR_TYPES = frozenset({"错别字", "用词不当"})
MAX_WORD_EXAMPLES = 8
MAX_OTHER_EXAMPLES = 3
TREND_STEP = 2.0  # percentage points of the total per essay that count as rising or falling

SYSTEM_PROMPT = (
    "你是高中语文教研员，为任课教师撰写学生作文训练建议。只依据给出的事实写，不编造分数、事例或原文；"
    "称学生为“该生”，不写任何姓名。用中文写一段不超过 200 字的话。"
    '只输出 JSON：{"narrative": "……"}。'
)


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

    def as_json(self, catalog_version: str) -> dict[str, Any]:
        return {
            "kind": self.kind, "key": self.key, "label": self.label, "reason": self.reason,
            "exercises": [{"title": e.title, "detail": e.detail} for e in self.exercises],
            "examples": list(self.examples), "catalog_version": catalog_version,
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

    def facts(self) -> list[str]:
        """The plan as short Chinese statements for the prompt: numbers and labels, no names, no essay text."""
        lines = [f"已评作文 {len(self.essay_ids)} 篇。"]
        for area in self.focus_areas:
            prefix = "薄弱维度" if area.kind == "dimension" else "反复出现的错误"
            lines.append(f"{prefix}：{area.label}，{area.reason}。")
        if self.trend is None:
            lines.append("只有一篇作文，暂无成绩趋势。")
        else:
            lines.append(
                f"总分得分率{self.trend.direction}：从 {self.trend.first:.0f}% 到 {self.trend.last:.0f}%"
                f"（平均每篇 {self.trend.slope:+.1f} 个百分点）。"
            )
        titles = [exercise.title for area in self.focus_areas for exercise in area.exercises]
        if titles:
            lines.append(f"已安排练习：{'、'.join(titles)}。")
        return lines

    def fallback_narrative(self) -> str:
        """A plain narrative from the facts, used when the model gives no usable answer."""
        weak = "、".join(a.label for a in self.focus_areas if a.kind == "dimension")
        errors = "、".join(a.label for a in self.focus_areas if a.kind == "error")
        parts = []
        if weak:
            parts.append(f"该生{weak}方面相对薄弱")
        if errors:
            parts.append(f"{errors}问题反复出现")
        text = "，".join(parts) or "该生各项表现较均衡"
        titles = "、".join(e.title for a in self.focus_areas for e in a.exercises[:1])
        if titles:
            text += f"，建议先安排{titles}"
        if self.trend is not None:
            text += f"；近期总分得分率{self.trend.direction}"
        return (text + "。")[:NARRATIVE_MAX_CHARS]


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
    exercises = tuple(e.filled(standing.name, "") for e in catalog.for_dimension(standing.key))
    return FocusArea("dimension", standing.key, standing.name, reason, exercises)


def _error_focus(pattern: ErrorPattern, essay_count: int, catalog: ExerciseCatalog) -> FocusArea:
    if essay_count > 1:
        reason = f"{pattern.essays} 篇作文中共出现 {pattern.count} 处"
    else:
        reason = f"本篇作文中出现 {pattern.count} 处"
    examples = "；".join(pattern.examples)
    exercises = tuple(e.filled(pattern.type, examples) for e in catalog.for_error_type(pattern.type))
    return FocusArea("error", pattern.type, pattern.type, reason, exercises, pattern.examples)


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


# --- the narrative -------------------------------------------------------------------------------------


def narrative_messages(draft: PlanDraft) -> list[dict[str, str]]:
    facts = "\n".join(f"- {line}" for line in draft.facts())
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"事实：\n{facts}\n请据此写给任课教师的训练建议。"},
    ]


def _parse_narrative(text: str) -> str | None:
    try:
        answer = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    narrative = answer.get("narrative") if isinstance(answer, dict) else None
    if not isinstance(narrative, str):
        return None
    narrative = " ".join(narrative.split())[:NARRATIVE_MAX_CHARS]
    return narrative or None


def _narratives(engine: EngineLike, drafts: Sequence[PlanDraft]) -> list[tuple[str, bool]]:
    """(narrative, written by the model) per draft, from one batched call."""
    if not drafts:
        return []
    generations = engine.generate_json([narrative_messages(d) for d in drafts], NARRATIVE_SCHEMA)
    results = []
    for draft, generation in zip(drafts, generations, strict=True):
        narrative = None if generation.error else _parse_narrative(generation.text)
        if narrative is None:
            logger.warning("no usable narrative for student %s (%s); using the plain one",
                           draft.student_id, generation.error or "invalid answer")
            results.append((draft.fallback_narrative(), False))
        else:
            results.append((narrative, True))
    return results


def write_narratives(engine: EngineLike, drafts: Sequence[PlanDraft]) -> list[str]:
    """One narrative (≤ 200 characters) per draft, in order, generated as one batch."""
    return [text for text, _ in _narratives(engine, drafts)]


def generate_plans_for_assignment(
    session_factory: sessionmaker[Session], engine: EngineLike, assignment_id: int
) -> int:
    """Compute, narrate and store a new plan for each student of the assignment; returns how many were stored.

    The database is read, then released while the model writes, then written in one transaction.
    """
    with session_factory() as session:
        drafts = build_plans_for_assignment(session, assignment_id)
    if not drafts:
        logger.info("assignment %s: no graded essays, no training plans", assignment_id)
        return 0
    narratives = _narratives(engine, drafts)
    model_name = str(engine.describe().get("model") or "") or None
    with transaction(session_factory) as session:
        session.add_all(
            TrainingPlan(
                student_id=draft.student_id, essay_ids=list(draft.essay_ids), focus_areas=draft.focus_json(),
                narrative=narrative, model_name=model_name if by_model else None,
            )
            for draft, (narrative, by_model) in zip(drafts, narratives, strict=True)
        )
    logger.info("assignment %s: stored %s training plans", assignment_id, len(drafts))
    return len(drafts)
