"""The supervised set an adapter learns from: teacher-final grades (overrides, second reads, arbitrations) of a
school, and imported scored tables, each turned into the grading conversation and the answer the model should
have given.

The conversation is the pipeline's own (``prepare_for_training``: normalised, masked, rendered exactly as at grading
time); the target is the answer JSON under the rubric's answer schema, written the way the grammar lets the model
write it, with the teacher's scores and bands and the teacher's comment (the model's where the teacher wrote none).
Train and validation are split by student, so no student's writing is on both sides.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from services.worker.evaluation.sets import TOTAL, LabelledEssay, read_table
from services.worker.jobs import EssayJob
from services.worker.pipeline import prepare_for_training
from services.worker.store import load_jobs
from shared.grades import latest_teacher_grades
from shared.models import Assignment, Classroom, Essay, EssayStatus, Grade, GradeSource
from shared.prompts.answer_schema import parse_answer
from shared.prompts.rubric import Rubric

NO_COMMENT = "（教师未写评语）"


class TrainingSetError(ValueError):
    """The data cannot make a training set; the message says why (which file and row, or what is missing)."""


@dataclass(frozen=True)
class Example:
    """One essay: the conversation at grading time, the answer to learn, and who wrote it (the split's unit)."""

    key: str
    student: str
    conversation: list[dict[str, str]]
    target: str
    essay: LabelledEssay  # the same essay as an evaluation reads it (teacher scores), for the held-out figures
    graded_at: datetime | None = None
    student_id: int | None = None  # the platform's student row, for the erasure list


def answer_target(rubric: Rubric, scores: dict[str, int], comment: str, errors: Sequence[dict[str, str]] = ()
                  ) -> str:
    """The answer JSON with these scores: dimensions in the rubric's order, each score's band, no evidence of the
    teacher's own, the errors the teacher kept, the comment; cut to the schema's limits and checked against it."""
    limits = rubric.output_limits
    answer: dict[str, Any] = {
        dim.key: {"score": int(scores[dim.key]), "band": rubric.band_for(dim.key, int(scores[dim.key])).name,
                  "evidence": []}
        for dim in rubric.dimensions
    }
    answer["errors"] = [
        {"type": e["type"], "original": e["original"][:limits.quote_max_chars],
         "suggestion": e.get("suggestion", "")[:limits.suggestion_max_chars],
         "explanation": e.get("explanation", "")[:limits.explanation_max_chars]}
        for e in errors if e["type"] in rubric.error_types and e["original"]
    ][:limits.errors_max_items]
    answer["comment"] = (comment.strip() or NO_COMMENT)[:limits.comment_max_chars]
    # The grammar writes ", " and ": " between items and keys, and characters as they are.
    text = json.dumps(answer, ensure_ascii=False)
    parse_answer(text, rubric)
    return text


def _example(job: EssayJob, rubric: Rubric, essay: LabelledEssay, student: str, comment: str,
             errors: Sequence[dict[str, str]], **extra: Any) -> Example | None:
    """Mask the target's free text together with the essay (same placeholders), then build the answer."""
    texts = [comment, *(part for e in errors for part in (e["original"], e.get("suggestion", ""),
                                                          e.get("explanation", "")))]
    conversation, masked = prepare_for_training(job, texts)
    if conversation is None:
        return None  # blank or a fragment: scored by rule, never sent to the model, nothing to learn
    masked_errors = [
        {**e, "original": masked[1 + 3 * i], "suggestion": masked[2 + 3 * i], "explanation": masked[3 + 3 * i]}
        for i, e in enumerate(errors)
    ]
    scores = {dim.key: essay.scores[dim.key] for dim in rubric.dimensions}
    return Example(key=essay.key, student=student, conversation=conversation,
                   target=answer_target(rubric, scores, masked[0], masked_errors), essay=essay, **extra)


def school_examples(session: Session, school_id: int, rubric: Rubric, rubric_ref: str) -> list[Example]:
    """Every graded essay of the school, under this rubric, whose latest grade by a teacher is the reference."""
    rows = session.execute(
        select(Essay.id, Essay.student_id, Assignment.prompt_text, Assignment.genre, Assignment.required_length)
        .join(Assignment, Essay.assignment_id == Assignment.id)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Classroom.school_id == school_id, Assignment.rubric_id == rubric_ref,
               Essay.status == EssayStatus.graded)
        .order_by(Essay.id)
    ).all()
    teacher = latest_teacher_grades(session, [row.id for row in rows])
    if not teacher:
        return []
    with_errors = {g.id: g for g in session.scalars(
        select(Grade).where(Grade.id.in_([g.id for g in teacher.values()])).options(selectinload(Grade.errors))
    )}
    model_comments = _latest_model_comments(session, list(teacher))
    jobs = {job.essay_id: job for job in load_jobs(session, list(teacher))}
    examples = []
    for row in rows:
        grade = teacher.get(row.id)
        if grade is None or any(dim.key not in grade.dimension_scores for dim in rubric.dimensions):
            continue
        scores = {key: int(value) for key, value in grade.dimension_scores.items()} | {TOTAL: grade.total}
        essay = LabelledEssay(key=f"essay-{row.id}", text=jobs[row.id].text, prompt=row.prompt_text, genre=row.genre,
                              required_length=row.required_length, scores=scores,
                              person_names=jobs[row.id].person_names, school_names=jobs[row.id].school_names)
        errors = [{"type": e.type, "original": e.original, "suggestion": e.suggestion,
                   "explanation": e.explanation} for e in with_errors[grade.id].errors if e.origin == "model"]
        example = _example(jobs[row.id], rubric, essay, f"student-{row.student_id}",
                           grade.comment or model_comments.get(row.id, ""), errors,
                           graded_at=grade.created_at, student_id=row.student_id)
        if example is not None:
            examples.append(example)
    return examples


def _latest_model_comments(session: Session, essay_ids: list[int]) -> dict[int, str]:
    latest = (select(Grade.essay_id, func.max(Grade.version).label("version"))
              .where(Grade.essay_id.in_(essay_ids), Grade.source == GradeSource.model).group_by(Grade.essay_id)
              .subquery())
    rows = session.execute(select(Grade.essay_id, Grade.comment).join(
        latest, (Grade.essay_id == latest.c.essay_id) & (Grade.version == latest.c.version)))
    return {essay_id: comment for essay_id, comment in rows}


def table_examples(path: Path, rubric: Rubric, rubric_ref: str, *, prompt: str | None = None) -> list[Example]:
    """An imported scored table (the ``yuejuan eval`` format): every row needs a score per rubric dimension. Each
    row is its own student unless the table has a key column naming the student (编号/学号/姓名)."""
    essays = read_table(path, rubric, prompt=prompt)
    examples = []
    for number, essay in enumerate(essays, start=2):
        missing = [dim.name for dim in rubric.dimensions if dim.key not in essay.scores]
        if missing:
            raise TrainingSetError(f"{path.name} 第 {number} 行: 训练需要每个维度的分数，缺少 {'、'.join(missing)}")
        job = EssayJob(essay_id=number, text=essay.text, assignment_prompt=essay.prompt, genre=essay.genre,
                       required_length=essay.required_length, rubric_id=rubric_ref, rubric_version=rubric.version)
        example = _example(job, rubric, essay, f"{path.name}:{essay.key}", "", [])
        if example is not None:
            examples.append(example)
    return examples


def split_by_student(examples: Sequence[Example], validation_fraction: float, seed: int
                     ) -> tuple[list[Example], list[Example]]:
    """Students shuffled with ``seed``; the first ones, up to ``validation_fraction`` of the essays (at least one
    student, and at least one left to train on), hold out their essays for validation."""
    students = sorted({e.student for e in examples})
    if len(students) < 2:
        raise TrainingSetError(f"训练与验证需按学生划分，至少需要 2 名学生的教师评分作文，现有 {len(students)} 名。")
    random.Random(seed).shuffle(students)
    held: set[str] = set()
    count = 0
    for student in students[:-1]:
        if held and count >= validation_fraction * len(examples):
            break
        held.add(student)
        count += sum(1 for e in examples if e.student == student)
    return [e for e in examples if e.student not in held], [e for e in examples if e.student in held]
