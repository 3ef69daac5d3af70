"""Feedback sheets as Word documents (.docx): the essay with its marks underlined, highlighted and numbered
inline, the list of marks, dimension scores, comment and next steps; a class as a zip of one file per student."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_COLOR_INDEX
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.text.paragraph import Paragraph as DocxParagraph
from docx.text.run import Run

from shared.feedback.sheet import FeedbackSheet

EAST_ASIAN_FONT = "宋体"  # SimSun on Chinese Windows; WPS and LibreOffice substitute their own Song typeface
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # Word cannot store these


def _font(run: Run, size: float | None = None, *, bold: bool = False) -> None:
    font = run.font
    font.name = EAST_ASIAN_FONT  # sets the Latin fonts; Chinese text reads w:eastAsia
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), EAST_ASIAN_FONT)
    if size:
        font.size = Pt(size)
    font.bold = bold or None


def _paragraph(document: DocumentObject, text: str = "", size: float = 10.5, *, bold: bool = False,
               align: WD_ALIGN_PARAGRAPH | None = None) -> DocxParagraph:
    paragraph = document.add_paragraph()
    if text:
        _font(paragraph.add_run(_NOT_XML.sub("", text)), size, bold=bold)
    if align is not None:
        paragraph.alignment = align
    paragraph.paragraph_format.space_after = Pt(2)
    return paragraph


def _section(document: DocumentObject, text: str) -> None:
    paragraph = _paragraph(document, text, 11.5, bold=True)
    paragraph.paragraph_format.space_before = Pt(8)


def add_sheet(document: DocumentObject, sheet: FeedbackSheet) -> None:
    """Append one student's sheet to ``document``."""
    _paragraph(document, sheet.heading, 11)
    _paragraph(document, sheet.score_line, 14, bold=True, align=WD_ALIGN_PARAGRAPH.RIGHT)
    _paragraph(document, sheet.title, 15, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    paragraph: DocxParagraph | None = None
    for text, mark in sheet.segments:
        for index, line in enumerate(text.split("\n")):
            if paragraph is None or index > 0:
                paragraph = document.add_paragraph()
                paragraph.paragraph_format.first_line_indent = Pt(22)
                paragraph.paragraph_format.space_after = Pt(0)
            if not line:
                continue
            run = paragraph.add_run(_NOT_XML.sub("", line))
            _font(run, 11)
            if mark is not None:
                run.font.underline = True
                run.font.highlight_color = WD_COLOR_INDEX.YELLOW
        if mark is not None and paragraph is not None:
            number = paragraph.add_run(str(mark.number))
            _font(number, 8)
            number.font.superscript = True
            number.font.color.rgb = RGBColor(0xC0, 0x00, 0x00)
    if sheet.marks:
        _section(document, f"批改标记（{len(sheet.marks)}）")
        for mark in sheet.marks:
            where = "" if mark.start is not None else "（未能在原文中定位）"
            _paragraph(document, f"{mark.number}. {mark.note}{where}", 10)
    _section(document, "分项得分")
    table = document.add_table(rows=1, cols=3)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.LEFT
    for cell, text in zip(table.rows[0].cells, ("维度", "得分", "等级"), strict=True):
        _font(cell.paragraphs[0].add_run(text), 10, bold=True)
    for dim in sheet.dimensions:
        score = "—" if dim.score is None else str(dim.score)
        if dim.max:
            score += f" / {dim.max}"
        for cell, text in zip(table.add_row().cells, (dim.name, score, dim.band), strict=True):
            _font(cell.paragraphs[0].add_run(_NOT_XML.sub("", text)), 10)
    if sheet.deductions:
        _paragraph(document, "扣分：" + "；".join(sheet.deductions), 10)
    _section(document, "评语")
    _paragraph(document, sheet.comment or "（无）", 10.5)
    if sheet.next_steps:
        _section(document, "下一步练习")
        for index, step in enumerate(sheet.next_steps, 1):
            _paragraph(document, f"{index}. {step}", 10)


def _new_document() -> DocumentObject:
    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Mm(18))
    document.core_properties.title = "作文反馈单"
    return document


def render_docx(sheets: Sequence[FeedbackSheet]) -> bytes:
    """One .docx with the sheets in order, each starting on a new page."""
    if not sheets:
        raise ValueError("没有可导出的已评作文")
    document = _new_document()
    for index, sheet in enumerate(sheets):
        if index:
            document.add_page_break()
        add_sheet(document, sheet)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def file_name(sheet: FeedbackSheet, suffix: str) -> str:
    """``学号-姓名-题目.suffix`` with characters no file system accepts replaced."""
    parts = [sheet.student_number or "", sheet.student_name, sheet.assignment_title]
    name = "-".join(part for part in parts if part)
    return _UNSAFE_NAME.sub("_", name)[:120] + suffix


def render_docx_zip(sheets: Sequence[FeedbackSheet]) -> bytes:
    """A zip of one .docx per student (UTF-8 names; a clash gets the essay id)."""
    if not sheets:
        raise ValueError("没有可导出的已评作文")
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for sheet in sheets:
            name = file_name(sheet, ".docx")
            if name in used:
                name = file_name(sheet, f"-{sheet.essay_id}.docx")
            used.add(name)
            archive.writestr(name, render_docx([sheet]))
    return buffer.getvalue()
