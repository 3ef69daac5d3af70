"""Feedback sheets to hand back: one student's sheet as PDF and .docx, a class as one PDF (a page per student)
and a zip of .docx; who may download them; the PDF read back with poppler."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from docx import Document
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, EssayStatus, transaction
from tests.factories.builders import add_essay, add_training_plan
from tests.factories.world import TYPO, World
from tests.render import page_count, page_texts, require
from tests.web.conftest import client_as

PLAN = [{"kind": "dimension", "key": "development", "label": "发展等级", "reason": "平均得分率 50%",
         "goal": "下一篇发展等级得分率从 50% 提高到 65% 以上",
         "exercises": [{"title": "思辨深化练习", "detail": "针对一个社会现象，依次回答是什么、为什么、怎么办。"}]}]


@pytest.fixture()
def planned(world: World, sessions: sessionmaker[Session]) -> World:
    with transaction(sessions) as session:
        add_training_plan(session, world.students[0], essay_ids=[world.essay], focus_areas=PLAN, narrative="略。")
    return world


def _pdf(tmp_path: Path, data: bytes, name: str = "sheet.pdf") -> Path:
    assert data.startswith(b"%PDF")
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_one_students_pdf_sheet_has_the_essay_marks_scores_comment_and_next_steps(
    app: Flask, planned: World, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    require("pdfinfo", "pdftotext")
    response = client_as(app, planned.users["owner"]).get(f"/essays/{planned.essay}/feedback.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "filename*=UTF-8''001-" in response.headers["Content-Disposition"]
    pdf = _pdf(tmp_path, response.data)
    assert page_count(pdf) == 1
    text = page_texts(pdf)[0]
    for expected in ("张三（001）", "总分 36 / 60", "读书的意义", "腹有诗书气自华", f"错别字：“{TYPO}” → “眼睛”",
                     "内容", "15 / 20", "二等", "-2 分：字数不足", "观点明确，论证稍显单薄。",
                     "下一篇发展等级得分率从 50% 提高到 65% 以上", "思辨深化练习"):
        assert expected in text, expected
    with sessions() as session:
        row = session.scalar(select(AuditLog).where(
            AuditLog.action == "report.download", AuditLog.object_type == "essay", AuditLog.object_id == planned.essay))
    assert row is not None and row.actor_id == planned.users["owner"]
    assert row.details["kind"] == "feedback" and row.details["format"] == "pdf"


def test_one_students_docx_sheet_marks_the_error_inline(app: Flask, planned: World) -> None:
    response = client_as(app, planned.users["owner"]).get(f"/essays/{planned.essay}/feedback.docx")
    assert response.status_code == 200 and response.data.startswith(b"PK")
    document = Document(io.BytesIO(response.data))
    runs = [run for paragraph in document.paragraphs for run in paragraph.runs]
    marked = [run for run in runs if run.font.underline]
    assert [run.text for run in marked] == [TYPO]
    after = runs[runs.index(marked[0]) + 1]
    assert after.text == "1" and after.font.superscript
    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    assert "观点明确，论证稍显单薄。" in text and "下一篇发展等级得分率从 50% 提高到 65% 以上" in text
    cells = [[cell.text for cell in row.cells] for row in document.tables[0].rows]
    assert cells[1] == ["内容", "15 / 20", "二等"]


def test_the_class_pdf_has_one_page_per_graded_student(
    app: Flask, world: World, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    require("pdfinfo", "pdftotext")
    with transaction(sessions) as session:  # 王五: an essay still queued, so no sheet
        add_essay(session, world.assignment, world.students[2], "还没评完的作文。", status=EssayStatus.queued)
    response = client_as(app, world.users["owner"]).get(f"/assignments/{world.assignment}/feedback.pdf")
    assert response.status_code == 200
    pdf = _pdf(tmp_path, response.data)
    pages = page_texts(pdf)
    assert page_count(pdf) == 2 and len(pages) == 2
    assert "张三（001）" in pages[0] and "读书使人明智" in pages[0] and "李四" not in pages[0]
    # Student text is text, never markup: the script tag is printed as written.
    assert "李四（002）" in pages[1] and "<script>alert('x')</script>" in pages[1]
    assert all("王五" not in page for page in pages)


def test_the_class_docx_zip_has_one_file_per_graded_student(app: Flask, world: World) -> None:
    response = client_as(app, world.users["owner"]).get(f"/assignments/{world.assignment}/feedback-docx.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
        assert len(names) == 2 and names[0].startswith("001-张三-") and names[1].startswith("002-李四-")
        second = Document(io.BytesIO(archive.read(names[1])))
    assert any("<script>alert('x')</script>" in p.text for p in second.paragraphs)


@pytest.mark.parametrize("key, status", [("colleague", 404), ("outsider", 404), ("other_admin", 404),
                                         ("admin", 200), (None, 302)])
def test_who_may_download_feedback_sheets(app: Flask, world: World, key: str | None, status: int) -> None:
    client = client_as(app, world.users[key] if key else None)
    for url in (f"/essays/{world.essay}/feedback.pdf", f"/essays/{world.essay}/feedback.docx",
                f"/assignments/{world.assignment}/feedback.pdf", f"/assignments/{world.assignment}/feedback-docx.zip"):
        response = client.get(url)
        assert response.status_code == status, url
        if status == 302:
            assert "/login" in response.headers["Location"]


def test_an_essay_or_a_class_without_a_grade_has_no_sheet(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        queued = add_essay(session, world.assignment, world.students[2], "还没评完的作文。", status=EssayStatus.queued)
        queued_id = queued.id
    client = client_as(app, world.users["owner"])
    response = client.get(f"/essays/{queued_id}/feedback.pdf")
    assert response.status_code == 404 and "还没有评分" in response.get_data(as_text=True)
    assert client.get(f"/essays/{queued_id}/feedback.txt").status_code == 404
    response = client_as(app, world.users["outsider"]).get(f"/assignments/{world.assignment_b}/feedback.pdf")
    assert response.status_code == 404 and "还没有已评分的作文" in response.get_data(as_text=True)
