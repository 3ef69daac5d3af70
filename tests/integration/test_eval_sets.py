"""Labelled sets for `yuejuan eval`: a school's scored table, the platform's teacher-final grades, essays-acea."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.worker.evaluation.sets import (
    ACEA_PROMPT,
    EvalSetError,
    read_acea,
    read_table,
    teacher_final_set,
)
from shared.models import Essay, EssayStatus, Grade, GradeSource, transaction
from shared.prompts.rubric import load_rubric
from tests.factories import make_class

RUBRIC = load_rubric("gaokao-national")


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_scored_table_gives_one_essay_per_row_with_total_and_dimensions(tmp_path: Path) -> None:
    path = _csv(tmp_path / "set.csv", "学号,标题,作文,内容,表达,发展等级,总分\n"
                                      "01,读书,读书使人明智。,15,14,10,39\n"
                                      "02,,没有标题的作文。,,,,30\n")
    first, second = read_table(path, RUBRIC, prompt="以读书为题")
    assert first.key == "01" and first.text == "读书\n读书使人明智。" and first.prompt == "以读书为题"
    assert first.scores == {"total": 39, "content": 15, "expression": 14, "development": 10}
    assert second.scores == {"total": 30} and second.text == "没有标题的作文。"


def test_an_xlsx_table_with_a_prompt_column(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["编号", "作文题", "作文", "总分"])
    book.active.append(["a", "题一", "正文一。", 42])
    book.save(tmp_path / "set.xlsx")
    (essay,) = read_table(tmp_path / "set.xlsx", RUBRIC)
    assert (essay.key, essay.prompt, essay.scores) == ("a", "题一", {"total": 42})


@pytest.mark.parametrize(("content", "message"), [
    ("学号,作文,总分\n01,正文。,61\n", "set.csv 第 2 行: 分数 61（total）应为 0 到 60 的整数"),
    ("学号,作文,总分\n01,正文。,abc\n", "set.csv 第 2 行: 分数 'abc'（total）不是数字"),
    ("学号,作文,总分\n01,,40\n", "set.csv 第 2 行: 作文为空"),
    ("学号,作文,内容\n01,正文。,21\n", "set.csv 第 2 行: 分数 21（content）应为 0 到 20 的整数"),
    ("学号,作文\n01,正文。\n", "set.csv 第 1 行: 找不到分数列"),
    ("学号,总分\n01,40\n", "set.csv 第 1 行: 找不到作文列"),
    ("学号,作文,总分\n01,正文。,40\n01,又一篇。,41\n", "编号 '01' 出现了不止一次"),
])
def test_a_bad_row_names_the_file_and_row(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(EvalSetError) as caught:
        read_table(_csv(tmp_path / "set.csv", content), RUBRIC, prompt="题")
    assert message in str(caught.value)


def test_acea_levels_and_folds_are_read_line_for_line(tmp_path: Path) -> None:
    records = [{"title": f"题{i}", "para": [[["第一句。"], ["第二句。"]], [["第二段。"]]]} for i in range(3)]
    labels = [{"score": level, "topic_score": level, "stru_score": "Medium", "logic_score": "Bad",
               "lang_score": "Great"} for level in ("Bad", "Medium", "Great")]
    (tmp_path / "data.json").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), "utf-8")
    (tmp_path / "score_ult.json").write_text("\n".join(json.dumps(r) for r in labels), "utf-8")
    (tmp_path / "cv_folds.txt").write_text("[0, 2]\n[1]\n", "utf-8")
    essays = read_acea(tmp_path)
    assert [e.text for e in essays][0] == "题0\n第一句。第二句。\n第二段。"
    assert [e.levels["total"] for e in essays] == ["Bad", "Medium", "Great"]
    assert essays[0].levels == {"total": "Bad", "topic": "Bad", "structure": "Medium", "logic": "Bad",
                                "language": "Great"}
    assert [e.fold for e in essays] == [0, 1, 0] and all(e.prompt == ACEA_PROMPT for e in essays)


def test_the_platforms_teacher_final_grades_are_a_set(db_sessions: sessionmaker[Session]) -> None:
    fixture = make_class(db_sessions, ["甲。", "乙。", "丙。"], tag=uuid.uuid4().hex[:6])
    overridden, model_only, queued = fixture.essay_ids
    with transaction(db_sessions) as session:
        for essay_id in (overridden, model_only):
            session.get(Essay, essay_id).status = EssayStatus.graded
        common = {"rubric_id": "gaokao-national", "rubric_version": "2024.1", "bands": {}, "raw_total": 0}
        session.add_all([
            Grade(essay_id=overridden, version=1, source=GradeSource.model, total=30,
                  dimension_scores={"content": 10, "expression": 10, "development": 10}, **common),
            Grade(essay_id=overridden, version=2, source=GradeSource.teacher, total=44,
                  dimension_scores={"content": 15, "expression": 15, "development": 14}, **common),
            Grade(essay_id=overridden, version=3, source=GradeSource.model, total=31,
                  dimension_scores={"content": 11, "expression": 10, "development": 10}, **common),
            Grade(essay_id=model_only, version=1, source=GradeSource.model, total=35,
                  dimension_scores={"content": 12, "expression": 12, "development": 11}, **common),
        ])
    with db_sessions() as session:
        (essay,) = teacher_final_set(session, assignment_id=fixture.assignment_id)
    assert essay.key == f"essay-{overridden}" and essay.text == "甲。"
    assert essay.scores == {"content": 15, "expression": 15, "development": 14, "total": 44}
    assert essay.key != f"essay-{queued}", "not graded: not in the set"
    assert sorted(essay.person_names) == ["学生000", "学生001", "学生002"], "the class roster is masked, as in grading"
    assert essay.school_names and essay.school_names[0].startswith("测试中学")
