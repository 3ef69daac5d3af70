"""Render checks: the class workbook, the school workbook and the feedback sheets converted by LibreOffice
headless, then read back with poppler — page counts, and text where a chart, a plan or an essay stands."""

from __future__ import annotations

import re
import shutil
import uuid
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.worker.plans.tasks import generate_plans_for_assignment
from services.worker.reports.class_workbook import build_class_workbook
from services.worker.reports.school_workbook import build_school_workbook
from shared.feedback.docx_sheet import render_docx
from shared.feedback.pdf_sheet import render_pdf
from shared.feedback.sheet import assignment_essays, load_sheets
from shared.models import transaction
from tests.essays import make_essay
from tests.factories import add_grade, make_class
from tests.integration.test_training_plans import FakeEngine
from tests.render import page_count, page_texts, require, to_pdf

pytestmark = pytest.mark.slow

STUDENTS = 5
A4_LANDSCAPE_PRINTABLE_EMU = 17 * 360_000  # 21 cm less the default margins and header/footer, in EMU
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "x": "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing",
       "r": "http://schemas.openxmlformats.org/package/2006/relationships"}


def chart_anchors(xlsx: Path) -> dict[str, tuple[list[int], set[int]]]:
    """Per worksheet part with charts: the 0-based rows the charts are anchored at, and the row breaks (a break
    with id n starts a page at 0-based row n); asserts every chart fits a printed page's height."""
    found: dict[str, tuple[list[int], set[int]]] = {}
    with zipfile.ZipFile(xlsx) as archive:
        for name in archive.namelist():
            if not re.fullmatch(r"xl/worksheets/sheet\d+\.xml", name):
                continue
            rels_name = name.replace("worksheets/", "worksheets/_rels/") + ".rels"
            if rels_name not in archive.namelist():
                continue
            sheet = ElementTree.fromstring(archive.read(name))
            breaks = {int(b.get("id", "0")) for b in sheet.iterfind("m:rowBreaks/m:brk", _NS)}
            rows = []
            for rel in ElementTree.fromstring(archive.read(rels_name)).iterfind("r:Relationship", _NS):
                drawing = ElementTree.fromstring(archive.read(rel.get("Target", "").lstrip("/")))
                for anchor in drawing.iterfind("x:oneCellAnchor", _NS):
                    rows.append(int(anchor.findtext("x:from/x:row", "0", _NS)))
                    extent = anchor.find("x:ext", _NS)
                    assert extent is not None and int(extent.get("cy", "0")) < A4_LANDSCAPE_PRINTABLE_EMU
            found[name] = (rows, breaks)
    return found


@pytest.fixture()
def graded_class(pg_sessions: sessionmaker[Session], schools: list[int]):  # type: ignore[no-untyped-def]
    """Five graded students with different weaknesses and errors, and their training plans."""
    texts = [make_essay(seed) for seed in range(STUDENTS)]
    fixture = make_class(pg_sessions, texts, tag=uuid.uuid4().hex[:6], student_names=["赵一", "钱二", "孙三", "李四",
                                                                                        "周五"])
    schools.append(fixture.school_id)
    with transaction(pg_sessions) as session:
        for index, (essay_id, text) in enumerate(zip(fixture.essay_ids, texts, strict=True)):
            quote = text.split("\n")[1][:4]
            add_grade(session, essay_id, {"content": 8 + 2 * index, "expression": 16 - 2 * index, "development": 12},
                      text=text, errors=[("错别字", quote, "改正", "示例")] * (1 + index % 2),
                      comment=f"第{index + 1}位同学的评语：中心明确。", bands={"content": "二等"})
    generate_plans_for_assignment(pg_sessions, FakeEngine(text="not json"), fixture.assignment_id)
    return fixture


def test_workbooks_and_feedback_sheets_render_in_libreoffice(
    pg_sessions: sessionmaker[Session], graded_class, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    require("soffice", "pdfinfo", "pdftotext")
    with pg_sessions() as session:
        class_xlsx = build_class_workbook(session, graded_class.assignment_id, tmp_path / "class.xlsx")
        school_xlsx = build_school_workbook(session, graded_class.school_id, tmp_path / "school.xlsx")
        sheets = load_sheets(session, assignment_essays(session, graded_class.assignment_id))
    assert len(sheets) == STUDENTS
    feedback_docx = tmp_path / "feedback.docx"
    feedback_docx.write_bytes(render_docx(sheets))
    feedback_pdf = tmp_path / "feedback.pdf"
    feedback_pdf.write_bytes(render_pdf(sheets))

    out = tmp_path / "pdf"
    out.mkdir()
    try:
        class_pdf, school_pdf, docx_pdf = (to_pdf(path, out) for path in (class_xlsx, school_xlsx, feedback_docx))
    finally:
        shutil.rmtree(out / ".lo-profile", ignore_errors=True)

    # The class workbook: the summary on two pages (the second chart starts the second), the five plans on one
    # page fitted to its width; the charts and every student's plan are there as text.
    class_pages = page_texts(class_pdf)
    assert page_count(class_pdf) == len(class_pages)
    assert "总分分布" in class_pages[0] and "各维度平均分" in class_pages[1]
    plan_pages = [page for page in class_pages if "练习安排" in page]
    assert len(plan_pages) == 1 and plan_pages[0].count("审题立意训练") + plan_pages[0].count("结构提纲训练") >= 2
    whole = "".join(class_pages)
    for name in ("赵一", "钱二", "孙三", "李四", "周五"):
        assert whole.count(name) >= 2, name  # the students sheet and the plans sheet
    assert whole.count("建议先完成") == STUDENTS  # each plain narrative's exercise sentence

    # The school workbook: every chart drawn, each starting a printed page of its own (a row break right above
    # its anchor) and shorter than a landscape A4 page, so none is cut in half.
    school_text = "".join(page_texts(school_pdf))
    for chart_title in ("各班平均得分率", "各教师平均得分率", "按月平均得分率", "各班第 n 次作文平均得分率",
                        "全校错误类型分布"):
        assert chart_title in school_text, chart_title
    anchors = chart_anchors(school_xlsx)
    assert sum(len(rows) for rows, _ in anchors.values()) == 5
    for sheet, (rows, breaks) in anchors.items():
        assert set(rows) <= breaks, sheet
    # 概览, the class sheet and its chart, the teachers and theirs, the trend table and its two charts, the
    # assignments, the errors and their chart: eleven pages fitted to the width, no column on a page of its own.
    school_pages = page_texts(school_pdf)
    # (LibreOffice also writes a chart's text, clipped out of sight, on the page above its break: the last page
    # holding the title is the chart's.)
    assert max(i for i, page in enumerate(school_pages) if "全校错误类型分布" in page) == 10

    # Feedback sheets: one page per student in the PDF and in LibreOffice's rendering of the .docx.
    for pdf in (feedback_pdf, docx_pdf):
        pages = page_texts(pdf)
        assert page_count(pdf) == STUDENTS == len(pages), pdf.name
        for index, (page, sheet) in enumerate(zip(pages, sheets, strict=True)):
            flat = "".join(page.split())
            assert sheet.student_name in flat and f"第{index + 1}位同学的评语：中心明确。" in flat
            assert "".join(sheet.text.split("\n")[1][5:35].split()) in flat  # past the mark and its number
            assert "下一篇" in flat  # the plan's next steps
