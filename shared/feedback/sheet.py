"""What a feedback sheet says, read from the database: the essay, its effective grade with the located marks,
the dimension scores, the comment and the next steps of the student's newest training plan."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shared.grades import final_grades
from shared.models import Assignment, Essay, EssayStatus, Grade, Student, TrainingPlan
from shared.prompts.rubric import Rubric, RubricError, resolve_rubric

logger = logging.getLogger(__name__)

MAX_NEXT_STEPS = 4


@dataclass(frozen=True)
class Mark:
    """A marked error: ``start``/``end`` index the essay text when the error is located there (else None)."""

    number: int
    type: str
    original: str
    suggestion: str
    explanation: str
    start: int | None
    end: int | None

    @property
    def note(self) -> str:
        """The mark as one line of the list under the essay."""
        text = f"{self.type}：“{self.original}”"
        if self.suggestion and self.suggestion != self.original:
            text += f" → “{self.suggestion}”"
        if self.explanation:
            text += f"（{self.explanation}）"
        return text


@dataclass(frozen=True)
class DimensionScore:
    name: str
    score: int | None
    max: int | None
    band: str


@dataclass(frozen=True)
class FeedbackSheet:
    essay_id: int
    student_name: str
    student_number: str | None
    class_name: str
    assignment_title: str
    title: str
    text: str
    marks: tuple[Mark, ...]
    dimensions: tuple[DimensionScore, ...]
    deductions: tuple[str, ...]
    total: int
    max_total: int | None
    comment: str
    next_steps: tuple[str, ...]

    @property
    def heading(self) -> str:
        number = f"（{self.student_number}）" if self.student_number else ""
        return f"{self.student_name}{number}　{self.class_name}　{self.assignment_title}"

    @property
    def score_line(self) -> str:
        out_of = f" / {self.max_total}" if self.max_total else ""
        return f"总分 {self.total}{out_of}"

    @property
    def segments(self) -> list[tuple[str, Mark | None]]:
        """The essay text cut into plain pieces and marked pieces (overlapping marks are listed, not marked)."""
        pieces: list[tuple[str, Mark | None]] = []
        cursor = 0
        for mark in self.marks:
            if mark.start is None or mark.end is None or mark.start < cursor:
                continue
            if mark.start > cursor:
                pieces.append((self.text[cursor:mark.start], None))
            pieces.append((self.text[mark.start:mark.end], mark))
            cursor = mark.end
        if cursor < len(self.text):
            pieces.append((self.text[cursor:], None))
        return pieces


def _marks(text: str, grade: Grade) -> tuple[Mark, ...]:
    ordered = sorted(grade.errors, key=lambda e: (e.start_offset, e.end_offset))
    marks = []
    for number, error in enumerate(ordered, start=1):
        located = 0 <= error.start_offset < error.end_offset <= len(text)
        marks.append(Mark(number, error.type, error.original, error.suggestion or "", error.explanation or "",
                          error.start_offset if located else None, error.end_offset if located else None))
    return tuple(marks)


def _dimensions(grade: Grade, rubric: Rubric | None) -> tuple[DimensionScore, ...]:
    if rubric is not None:
        keys: list[tuple[str, str, int | None]] = [(d.key, d.name, d.max) for d in rubric.dimensions]
    else:
        keys = [(key, key, None) for key in grade.dimension_scores]
    rows = []
    for key, name, maximum in keys:
        score = grade.dimension_scores.get(key)
        rows.append(DimensionScore(name, int(score) if score is not None else None, maximum,
                                   str((grade.bands or {}).get(key, ""))))
    return tuple(rows)


def next_steps(focus_areas: Sequence[Any]) -> tuple[str, ...]:
    """The plan's next steps for the student: per focus area its target, then its first exercise."""
    steps = []
    for area in focus_areas:
        if not isinstance(area, dict):
            continue
        exercises = [e for e in area.get("exercises", []) if isinstance(e, dict)]
        parts = [str(area["goal"])] if area.get("goal") else [f"{area.get('label', '')}：{area.get('reason', '')}"]
        if exercises:
            parts.append(f"练习“{exercises[0].get('title', '')}”：{exercises[0].get('detail', '')}")
        step = "。".join(part.rstrip("。") for part in parts if part) + "。"
        steps.append(step)
    return tuple(steps[:MAX_NEXT_STEPS])


def _latest_plans(session: Session, student_ids: Sequence[int]) -> dict[int, TrainingPlan]:
    plans: dict[int, TrainingPlan] = {}
    if not student_ids:
        return plans
    rows = session.scalars(
        select(TrainingPlan).where(TrainingPlan.student_id.in_(list(student_ids)))
        .order_by(TrainingPlan.student_id, TrainingPlan.created_at.desc(), TrainingPlan.id.desc())
    )
    for plan in rows:
        plans.setdefault(plan.student_id, plan)
    return plans


def _rubric(assignment: Assignment) -> Rubric | None:
    try:
        return resolve_rubric(assignment.rubric_id, assignment.rubric_version)
    except RubricError as exc:
        logger.warning("assignment %s: %s; the sheet lists dimension keys", assignment.id, exc)
        return None


def load_sheets(session: Session, essays: Sequence[Essay]) -> list[FeedbackSheet]:
    """One sheet per graded essay, in the given order; essays without a grade are left out."""
    # A withheld (待复核) model score is no final score: no sheet until a teacher confirms or overrides it.
    grades = final_grades(session, [essay.id for essay in essays if essay.status == EssayStatus.graded])
    plans = _latest_plans(session, [essay.student_id for essay in essays if essay.id in grades])
    rubrics: dict[int, Rubric | None] = {}
    sheets = []
    for essay in essays:
        grade = grades.get(essay.id)
        if grade is None:
            continue
        assignment = essay.assignment
        if assignment.id not in rubrics:
            rubrics[assignment.id] = _rubric(assignment)
        rubric = rubrics[assignment.id]
        plan = plans.get(essay.student_id)
        sheets.append(FeedbackSheet(
            essay_id=essay.id, student_name=essay.student.name, student_number=essay.student.student_number,
            class_name=assignment.classroom.name, assignment_title=assignment.title,
            title=essay.title or "（无标题）", text=essay.text, marks=_marks(essay.text, grade),
            dimensions=_dimensions(grade, rubric),
            deductions=tuple(f"{d.points} 分：{d.detail}" for d in grade.deductions),
            total=grade.total, max_total=rubric.total if rubric else None, comment=grade.comment or "",
            next_steps=next_steps(plan.focus_areas if plan else []),
        ))
    return sheets


def assignment_essays(session: Session, assignment_id: int) -> list[Essay]:
    """An assignment's essays in roster order (student number, then name), with what a sheet reads loaded."""
    return list(session.scalars(
        select(Essay).join(Student, Essay.student_id == Student.id)
        .where(Essay.assignment_id == assignment_id)
        .order_by(Student.student_number, Student.name, Essay.id)
        .options(selectinload(Essay.student), selectinload(Essay.assignment).selectinload(Assignment.classroom))
    ))
