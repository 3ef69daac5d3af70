"""The class results table of an assignment: one row per student with the effective grade, sortable."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.confidence import is_low_confidence
from shared.grades import effective_grades, is_withheld
from shared.models import Assignment, Essay, Student
from shared.prompts.rubric import Rubric

STATUS_NAMES = {"queued": "排队中", "grading": "评分中", "graded": "已评分", "failed": "失败", "review": "待复核",
                "second_read": "待二评"}
BASE_SORTS = ("number", "name", "status", "total", "deductions", "flags")


@dataclass(frozen=True)
class Column:
    key: str
    name: str
    max: int | None


@dataclass
class ResultRow:
    student_id: int
    student_name: str
    student_number: str | None
    essay_id: int | None = None
    status: str | None = None
    char_count: int | None = None
    scores: dict[str, int] = field(default_factory=dict)
    bands: dict[str, str] = field(default_factory=dict)
    total: int | None = None
    deduction_points: int = 0
    deductions: list[str] = field(default_factory=list)
    flags: int = 0
    version: int | None = None
    source: str | None = None
    confidence: float | None = None  # the model's, on a model grade (shared.confidence)
    low_confidence: bool = False

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status or "", "未提交")

    def as_json(self) -> dict[str, Any]:
        return {
            "student_id": self.student_id, "student_name": self.student_name,
            "student_number": self.student_number, "essay_id": self.essay_id, "status": self.status,
            "char_count": self.char_count, "scores": self.scores, "bands": self.bands, "total": self.total,
            "deduction_points": self.deduction_points, "deductions": self.deductions, "flags": self.flags,
            "grade_version": self.version, "grade_source": self.source, "confidence": self.confidence,
            "low_confidence": self.low_confidence,
        }


@dataclass
class ResultsTable:
    columns: list[Column]
    rows: list[ResultRow]
    sort: str
    direction: str
    rubric_total: int | None


def _sort_value(row: ResultRow, sort: str) -> tuple[int, Any]:
    """(missing?, value): rows without a value always sort last."""
    value: Any
    if sort == "name":
        value = row.student_name
    elif sort == "status":
        value = row.status_name if row.status else None
    elif sort == "total":
        value = row.total
    elif sort == "deductions":
        value = row.deduction_points if row.version is not None else None
    elif sort == "flags":
        value = row.flags if row.essay_id is not None else None
    elif sort.startswith("dim:"):
        value = row.scores.get(sort[4:])
    else:
        value = row.student_number or ""
    return (value is None, value if value is not None else 0)


def class_results(
    session: Session, assignment: Assignment, rubric: Rubric | None, *, sort: str = "number", direction: str = "asc",
    blind: Collection[int] = (),
) -> ResultsTable:
    """The class's table; essays in ``blind`` (awaiting the reader's blind second reading) show no model score."""
    students = session.scalars(
        select(Student).where(Student.classroom_id == assignment.classroom_id).order_by(Student.student_number,
                                                                                         Student.name)
    ).all()
    essays = {e.student_id: e for e in session.scalars(select(Essay).where(Essay.assignment_id == assignment.id))}
    grades = effective_grades(session, [e.id for e in essays.values()])
    rows: list[ResultRow] = []
    seen_keys: dict[str, None] = {}
    for student in students:
        row = ResultRow(student.id, student.name, student.student_number)
        essay = essays.get(student.id)
        if essay is not None:
            row.essay_id, row.status, row.char_count = essay.id, str(essay.status), essay.char_count
            row.flags = len(essay.flags or [])
            grade = grades.get(essay.id)
            if grade is not None and is_withheld(grade):
                row.status = "review"  # flagged for injection: no score until a teacher confirms one
            elif grade is not None and essay.id in blind:
                row.status = "second_read"  # 双评: the model's score stays hidden until the second reading
            elif grade is not None:
                row.scores = {k: int(v) for k, v in grade.dimension_scores.items()}
                row.bands = {k: str(v) for k, v in grade.bands.items()}
                row.total, row.version, row.source = grade.total, grade.version, str(grade.source)
                row.confidence = grade.confidence
                row.low_confidence = grade.source == "model" and is_low_confidence(grade.confidence,
                                                                                   grade.dropped_quotes)
                row.deduction_points = sum(d.points for d in grade.deductions)
                row.deductions = [f"{d.detail}（{d.points} 分）" for d in grade.deductions]
                seen_keys.update(dict.fromkeys(row.scores))
        rows.append(row)
    if rubric is not None:
        columns = [Column(dim.key, dim.name, dim.max) for dim in rubric.dimensions]
    else:
        columns = [Column(key, key, None) for key in seen_keys]
    valid = set(BASE_SORTS) | {f"dim:{c.key}" for c in columns}
    sort = sort if sort in valid else "number"
    direction = "desc" if direction == "desc" else "asc"
    present = [r for r in rows if not _sort_value(r, sort)[0]]
    absent = [r for r in rows if _sort_value(r, sort)[0]]
    present.sort(key=lambda r: _sort_value(r, sort)[1], reverse=direction == "desc")
    return ResultsTable(columns, present + absent, sort, direction, rubric.total if rubric else None)
