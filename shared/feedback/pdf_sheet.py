"""Feedback sheets as one PDF, one A4 page per student (a long essay is scaled down to fit its page).

Chinese text uses reportlab's built-in CID font STSong-Light (Adobe-GB1): it needs no font file on the server,
so the PDF can be built offline anywhere; PDF readers draw it with their own Song/Ming typeface (SimSun on
Windows, Noto Serif CJK where fonts-noto-cjk is installed), and the text stays selectable and searchable.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, KeepInFrame, PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

from shared.feedback.sheet import FeedbackSheet

FONT = "STSong-Light"
MARGIN = 15 * mm
MARK_COLOUR = "#fff0a0"


@lru_cache(maxsize=1)
def _styles() -> dict[str, ParagraphStyle]:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    base = ParagraphStyle("base", fontName=FONT, fontSize=10.5, leading=16, wordWrap="CJK")
    return {
        "base": base,
        "heading": ParagraphStyle("heading", base, fontSize=12, leading=16, textColor=colors.HexColor("#333333")),
        "score": ParagraphStyle("score", base, fontSize=14, leading=18, alignment=2),
        "title": ParagraphStyle("title", base, fontSize=15, leading=22, alignment=1, spaceBefore=4, spaceAfter=6),
        "essay": ParagraphStyle("essay", base, fontSize=11, leading=19, firstLineIndent=22),
        "section": ParagraphStyle("section", base, fontSize=11.5, leading=17, spaceBefore=8, spaceAfter=2,
                                  textColor=colors.HexColor("#1f4e79")),
        "small": ParagraphStyle("small", base, fontSize=9.5, leading=14),
    }


def _essay_paragraphs(sheet: FeedbackSheet) -> list[Flowable]:
    """One paragraph per line of the essay; a mark spanning a line break is closed and reopened on each line,
    its number after its last piece (every tag opened on a line is closed on it)."""
    styles = _styles()
    lines = [""]
    for text, mark in sheet.segments:
        for index, piece in enumerate(text.split("\n")):
            if index:
                lines.append("")
            if piece and mark is None:
                lines[-1] += escape(piece)
            elif piece:
                lines[-1] += f'<u><font backColor="{MARK_COLOUR}">{escape(piece)}</font></u>'
        if mark is not None:
            lines[-1] += f'<super><font color="#c00000" size="7">{mark.number}</font></super>'
    return [Paragraph(line.strip(), styles["essay"]) for line in lines if line.strip()]


def _scores_table(sheet: FeedbackSheet) -> Table:
    styles = _styles()
    rows = [[Paragraph(cell, styles["small"]) for cell in ("维度", "得分", "等级")]]
    for dim in sheet.dimensions:
        score = "—" if dim.score is None else str(dim.score)
        if dim.max:
            score += f" / {dim.max}"
        rows.append([Paragraph(escape(dim.name), styles["small"]), Paragraph(score, styles["small"]),
                     Paragraph(escape(dim.band), styles["small"])])
    table = Table(rows, colWidths=[60 * mm, 30 * mm, 40 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#ddebf7")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def sheet_flowables(sheet: FeedbackSheet) -> list[Flowable]:
    """Everything one student's page shows, in reading order."""
    styles = _styles()
    story: list[Flowable] = [
        Table([[Paragraph(escape(sheet.heading), styles["heading"]), Paragraph(sheet.score_line, styles["score"])]],
              colWidths=["70%", "30%"], style=[("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                                               ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#1f4e79"))]),
        Paragraph(escape(sheet.title), styles["title"]),
        *_essay_paragraphs(sheet),
    ]
    if sheet.marks:
        story.append(Paragraph(f"批改标记（{len(sheet.marks)}）", styles["section"]))
        for mark in sheet.marks:
            where = "" if mark.start is not None else "（未能在原文中定位）"
            story.append(Paragraph(f"{mark.number}. {escape(mark.note)}{where}", styles["small"]))
    story += [Paragraph("分项得分", styles["section"]), _scores_table(sheet)]
    if sheet.deductions:
        story.append(Paragraph("扣分：" + escape("；".join(sheet.deductions)), styles["small"]))
    story += [Paragraph("评语", styles["section"]), Paragraph(escape(sheet.comment or "（无）"), styles["base"])]
    if sheet.next_steps:
        story.append(Paragraph("下一步练习", styles["section"]))
        story += [Paragraph(f"{i}. {escape(step)}", styles["small"]) for i, step in enumerate(sheet.next_steps, 1)]
    return story


def render_pdf(sheets: Sequence[FeedbackSheet]) -> bytes:
    """One PDF with one page per sheet, in order."""
    if not sheets:
        raise ValueError("没有可导出的已评作文")
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                                 bottomMargin=MARGIN, title="作文反馈单", author="阅卷")
    story: list[Flowable] = []
    for index, sheet in enumerate(sheets):
        if index:
            story.append(PageBreak())
        # The frame is a little under the page's so that rounding never spills a sheet onto a second page.
        story.append(KeepInFrame(document.width, document.height - 6, sheet_flowables(sheet), mode="shrink"))
    document.build(story)
    return buffer.getvalue()
