"""Labelled sets for ``yuejuan eval``: teacher-scored essays from a table, the platform's own teacher-final
grades, or the essays-acea research set with its 3-level trait labels and cross-validation folds.

Every reader returns plain ``LabelledEssay`` records; a bad row raises ``EvalSetError`` naming the row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.grades import latest_teacher_grades
from shared.models import Assignment, Classroom, Essay, EssayStatus
from shared.prompts.rubric import Rubric

TOTAL = "total"
# The essays-acea labels, worst to best, and its traits by our names (its overall `score` is the total).
ACEA_LEVELS = ("Bad", "Medium", "Great")
ACEA_TRAITS = {"score": TOTAL, "topic_score": "topic", "stru_score": "structure", "logic_score": "logic",
               "lang_score": "language"}
# essays-acea carries titles but not the exam prompts the students answered.
ACEA_PROMPT = "阅读下面的材料，根据要求写一篇不少于800字的议论文。要求：选好角度，确定立意，明确文体，自拟标题。"

KEY_HEADERS = ("编号", "学号", "id", "key", "姓名", "name")
TITLE_HEADERS = ("标题", "题目", "title")
TEXT_HEADERS = ("作文", "正文", "内容", "作文内容", "text", "essay")
PROMPT_HEADERS = ("作文题", "题干", "材料", "prompt")
TOTAL_HEADERS = ("总分", "得分", "分数", "total", "score")


class EvalSetError(ValueError):
    """A labelled set that cannot be used: the message names the file and row."""


@dataclass(frozen=True)
class LabelledEssay:
    key: str
    text: str
    prompt: str
    genre: str = "议论文"
    required_length: int = 800
    scores: dict[str, int] = field(default_factory=dict)  # teacher points per dimension key and "total"
    levels: dict[str, str] = field(default_factory=dict)  # ordinal labels (essays-acea) per trait and "total"
    fold: int | None = None  # cross-validation fold, where the set has them
    # Names to mask as grading masks them (the platform's own essays: the class roster and the school).
    person_names: tuple[str, ...] = ()
    school_names: tuple[str, ...] = ()


def read_table(path: Path, rubric: Rubric, *, prompt: str | None = None) -> list[LabelledEssay]:
    """A school's teacher-scored essays (.csv or .xlsx): a text column, a total and/or a column per rubric
    dimension (its name, e.g. 内容, or its key), optionally a key, title and prompt column."""
    rows = _table_rows(path)
    if not rows:
        raise EvalSetError(f"{path.name}: 表格是空的")
    header, body = rows[0], rows[1:]
    columns = {cell.strip().lower(): index for index, cell in enumerate(header) if cell.strip()}

    def find(names: Iterable[str]) -> int | None:
        return next((columns[n.lower()] for n in names if n.lower() in columns), None)

    text_col, title_col, key_col, prompt_col = find(TEXT_HEADERS), find(TITLE_HEADERS), find(KEY_HEADERS), \
        find(PROMPT_HEADERS)
    score_cols = {TOTAL: find(TOTAL_HEADERS)} | {d.key: find((d.name, d.key)) for d in rubric.dimensions}
    score_cols = {key: col for key, col in score_cols.items() if col is not None}
    if text_col is None:
        raise EvalSetError(f"{path.name} 第 1 行: 找不到作文列（{'、'.join(TEXT_HEADERS[:4])}）")
    if not score_cols:
        names = "、".join([TOTAL_HEADERS[0], *(d.name for d in rubric.dimensions)])
        raise EvalSetError(f"{path.name} 第 1 行: 找不到分数列（{names} 之一）")
    if prompt_col is None and not prompt:
        raise EvalSetError(f"{path.name}: 表格没有作文题列（作文题），请用 --prompt 给出作文题")
    limits = {TOTAL: rubric.total} | {d.key: d.max for d in rubric.dimensions}
    essays: list[LabelledEssay] = []
    for number, row in enumerate(body, start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path.name} 第 {number} 行"
        text = _cell(row, text_col)
        if not text:
            raise EvalSetError(f"{where}: 作文为空")
        title = _cell(row, title_col)
        scores = {key: _score(_cell(row, col), limits[key], where, key) for key, col in score_cols.items()}
        scores = {key: value for key, value in scores.items() if value is not None}
        if not scores:
            raise EvalSetError(f"{where}: 没有任何分数")
        essays.append(LabelledEssay(
            key=_cell(row, key_col) or str(number), text=f"{title}\n{text}" if title else text,
            prompt=_cell(row, prompt_col) or prompt or "", required_length=rubric.required_length, scores=scores,
        ))
    if not essays:
        raise EvalSetError(f"{path.name}: 表格里没有作文")
    keys = [essay.key for essay in essays]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise EvalSetError(f"{path.name}: 编号 {duplicate!r} 出现了不止一次")
    return essays


def read_acea(directory: Path, *, limit: int | None = None) -> list[LabelledEssay]:
    """essays-acea (``data.json``, ``score_ult.json`` line for line, ``cv_folds.txt``), read where it lies."""
    texts = _json_lines(directory / "data.json")
    labels = _json_lines(directory / "score_ult.json")
    if len(texts) != len(labels):
        raise EvalSetError(f"{directory}: data.json 有 {len(texts)} 行，score_ult.json 有 {len(labels)} 行")
    folds: dict[int, int] = {}
    for fold, line in enumerate((directory / "cv_folds.txt").read_text(encoding="utf-8").splitlines()):
        for index in json.loads(line) if line.strip() else []:
            folds[int(index)] = fold
    essays = []
    for index, (record, label) in enumerate(zip(texts, labels, strict=True)):
        body = "\n".join("".join(s[0] if isinstance(s, list) else str(s) for s in p) for p in record["para"])
        levels = {ours: label[theirs] for theirs, ours in ACEA_TRAITS.items()}
        if any(level not in ACEA_LEVELS for level in levels.values()):
            raise EvalSetError(f"{directory / 'score_ult.json'} 第 {index + 1} 行: 未知的等级 {levels}")
        essays.append(LabelledEssay(key=str(index), text=f"{record['title']}\n{body}", prompt=ACEA_PROMPT,
                                    levels=levels, fold=folds.get(index)))
        if limit is not None and len(essays) >= limit:
            break
    return essays


def teacher_final_set(
    session: Session, *, assignment_id: int | None = None, school_id: int | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> list[LabelledEssay]:
    """Graded essays whose latest teacher grade (an override or second reading) is the reference: agreement with
    the school's own teachers on its real work. Filtered by assignment, or by school and grading date range."""
    query = (
        select(Essay, Assignment).join(Assignment, Essay.assignment_id == Assignment.id)
        .where(Essay.status == EssayStatus.graded)
    )
    if assignment_id is not None:
        query = query.where(Essay.assignment_id == assignment_id)
    if school_id is not None:
        query = query.join(Classroom, Assignment.classroom_id == Classroom.id).where(Classroom.school_id == school_id)
    from services.worker.store import load_jobs  # the names to mask, exactly as a grading task loads them

    rows = session.execute(query.order_by(Essay.id)).all()
    grades = latest_teacher_grades(session, [essay.id for essay, _ in rows])
    kept = [(essay, assignment, grade) for essay, assignment in rows
            if (grade := grades.get(essay.id)) is not None
            and not (since and grade.created_at < since) and not (until and grade.created_at >= until)]
    jobs = {job.essay_id: job for job in load_jobs(session, [essay.id for essay, _, _ in kept])}
    essays = []
    for essay, assignment, grade in kept:
        scores = {key: int(value) for key, value in (grade.dimension_scores or {}).items()} | {TOTAL: grade.total}
        essays.append(LabelledEssay(
            key=f"essay-{essay.id}", text=essay.text, prompt=assignment.prompt_text, genre=assignment.genre,
            required_length=assignment.required_length, scores=scores,
            person_names=jobs[essay.id].person_names, school_names=jobs[essay.id].school_names,
        ))
    return essays


def _table_rows(path: Path) -> list[list[str]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return [list(row) for row in csv.reader(io.StringIO(raw.decode(encoding)))]
            except UnicodeDecodeError:
                continue
        raise EvalSetError(f"{path.name}: 无法识别的文本编码（请保存为 UTF-8）")
    if suffix == ".xlsx":
        import openpyxl

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            return [["" if value is None else str(value) for value in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    raise EvalSetError(f"{path.name}: 不支持的文件类型（支持 .csv、.xlsx）")


def _cell(row: Sequence[str], column: int | None) -> str:
    return row[column].strip() if column is not None and column < len(row) else ""


def _score(value: str, limit: int, where: str, key: str) -> int | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise EvalSetError(f"{where}: 分数 {value!r}（{key}）不是数字") from None
    if not number.is_integer() or not 0 <= number <= limit:
        raise EvalSetError(f"{where}: 分数 {value}（{key}）应为 0 到 {limit} 的整数")
    return int(number)


def _json_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalSetError(f"{path}: 无法读取（{exc}）") from exc
