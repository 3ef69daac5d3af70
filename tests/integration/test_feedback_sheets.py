"""Feedback-sheet content from the database on SQLite and PostgreSQL: the newest grade counts, marks are placed
where they stand in the text (overlapping or unlocated ones listed only), next steps come from the newest plan."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

from docx import Document
from sqlalchemy.orm import Session, sessionmaker

from shared.feedback.docx_sheet import render_docx
from shared.feedback.pdf_sheet import render_pdf
from shared.feedback.sheet import FeedbackSheet, Mark, assignment_essays, load_sheets
from shared.models import GradeSource, transaction
from tests.factories import add_grade, add_training_plan, make_class
from tests.render import page_count, page_texts, require

TEXT = "远方\n我们要再接再励，不断前进。每个人都有自己的梦想，，也有自己的困难。"


def test_sheets_follow_the_newest_grade_and_plan(db_sessions: sessionmaker[Session]) -> None:
    fixture = make_class(db_sessions, [TEXT, TEXT], tag=uuid.uuid4().hex[:6], student_names=["甲", "乙"])
    with transaction(db_sessions) as session:
        add_grade(session, fixture.essay_ids[0], {"content": 10, "expression": 10, "development": 10}, text=TEXT,
                  comment="旧评语。")
        add_grade(session, fixture.essay_ids[0], {"content": 16, "expression": 14, "development": 12}, text=TEXT,
                  version=2, source=GradeSource.teacher, comment="教师改后的评语。",
                  errors=[("错别字", "再接再励", "再接再厉"), ("错别字", "接再", "接在"), ("标点", "，，", "，")])
        add_training_plan(session, fixture.student_ids[0], essay_ids=[], narrative="旧。", focus_areas=[
            {"kind": "dimension", "label": "内容", "reason": "旧的原因", "exercises": []}])
        newest = {"kind": "error", "label": "错别字", "goal": "下一篇不再出现错别字",
                  "exercises": [{"title": "错别字订正清单", "detail": "订正：再接再励→再接再厉"}]}
        add_training_plan(session, fixture.student_ids[0], essay_ids=[fixture.essay_ids[0]], narrative="新。",
                          focus_areas=[newest])
    with db_sessions() as session:
        sheets = load_sheets(session, assignment_essays(session, fixture.assignment_id))
    assert len(sheets) == 1  # 乙's essay is still queued
    sheet = sheets[0]
    assert (sheet.student_name, sheet.total, sheet.max_total, sheet.comment) == ("甲", 42, 60, "教师改后的评语。")
    assert [(d.name, d.score, d.max) for d in sheet.dimensions] == [("内容", 16, 20), ("表达", 14, 20),
                                                                    ("发展等级", 12, 20)]
    assert sheet.next_steps == ("下一篇不再出现错别字。练习“错别字订正清单”：订正：再接再励→再接再厉。",)
    marked = [(text, mark.number) for text, mark in sheet.segments if mark is not None]
    # "接再" lies inside "再接再励": listed, not marked, so the text is never cut twice.
    assert marked == [("再接再励", 1), ("，，", 3)]
    assert "".join(text for text, _ in sheet.segments) == TEXT
    assert [m.note for m in sheet.marks] == ["错别字：“再接再励” → “再接再厉”", "错别字：“接再” → “接在”",
                                             "标点：“，，” → “，”"]


def test_a_mark_across_a_line_break_and_a_control_character_render_in_both_formats(tmp_path: Path) -> None:
    require("pdftotext", "pdfinfo")
    text = "远方\n我们要再接再励，\n不断前进。<b>不是标签</b>"
    start = text.index("，\n不断")
    sheet = FeedbackSheet(
        essay_id=1, student_name="甲", student_number="01", class_name="一班", assignment_title="作文", title="远方",
        text=text, marks=(Mark(1, "标点", "，\n不断", "。不断", "", start, start + 4),), dimensions=(), deductions=(),
        total=40, max_total=60, comment="评\x07语。", next_steps=(),  # a control character Word cannot store
    )
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(render_pdf([sheet]))
    page = "".join(page_texts(pdf)[0].split())
    assert page_count(pdf) == 1 and "我们要再接再励，" in page and "不断1前进。<b>不是标签</b>" in page
    document = Document(io.BytesIO(render_docx([sheet])))
    underlined = [run.text for p in document.paragraphs for run in p.runs if run.font.underline]
    assert underlined == ["，", "不断"]
    assert "评语。" in [p.text for p in document.paragraphs]
