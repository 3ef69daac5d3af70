"""Word documents (.docx) of the teaching assistant: an assignment's 题目解析 (its 立意 angles and the 素材 picked)
and a 教案 version, with the Chinese font set for East Asian text so Word and WPS show it alike."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.text.run import Run

from shared.prompts.material_library import Material
from shared.prompts.teaching import LESSON_SECTIONS, RANK_NAMES

EAST_ASIAN_FONT = "宋体"


def _font(run: Run, size: float, bold: bool = False) -> None:
    run.font.name = EAST_ASIAN_FONT
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), EAST_ASIAN_FONT)
    run.font.size = Pt(size)
    run.font.bold = bold or None


def _line(document: DocumentObject, text: str, size: float = 10.5, *, bold: bool = False,
          center: bool = False) -> None:
    paragraph = document.add_paragraph()
    _font(paragraph.add_run(text), size, bold)
    if center:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.space_after = Pt(3)


def _heading(document: DocumentObject, text: str) -> None:
    _line(document, text, 13, bold=True)


def _labelled(document: DocumentObject, label: str, text: str) -> None:
    paragraph = document.add_paragraph()
    _font(paragraph.add_run(f"{label}："), 10.5, bold=True)
    _font(paragraph.add_run(text), 10.5)
    paragraph.paragraph_format.space_after = Pt(2)


def _bytes(document: DocumentObject) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def rank_name(index: int, count: int) -> str:
    """稳妥 → 大胆 by position: the first angle is the safest, the last the boldest."""
    if count <= 1:
        return RANK_NAMES[0]
    return RANK_NAMES[round(index * (len(RANK_NAMES) - 1) / (count - 1))]


def topic_docx(title: str, prompt_text: str, angles: Sequence[dict[str, Any]], chosen: int | None,
               picks: Sequence[tuple[Material, str]]) -> bytes:
    document = Document()
    _line(document, f"{title} · 题目解析", 16, bold=True, center=True)
    _heading(document, "作文题")
    for line in prompt_text.splitlines():
        if line.strip():
            _line(document, line.strip())
    _heading(document, "立意角度（从稳妥到大胆）")
    for index, angle in enumerate(angles):
        mark = "（已选）" if chosen == index else ""
        _line(document, f"{index + 1}. 【{rank_name(index, len(angles))}】{angle['thesis']}{mark}", 11, bold=True)
        _labelled(document, "主题", str(angle.get("theme", "")))
        _labelled(document, "关键词", "、".join(angle.get("keywords") or []))
        _labelled(document, "如何回应材料", str(angle.get("relation", "")))
        _labelled(document, "常见偏题", str(angle.get("off_topic", "")))
    if picks:
        _heading(document, "推荐素材")
        for entry, usage in picks:
            _line(document, f"{entry.title}（{entry.kind_name}）", 11, bold=True)
            if entry.text:
                _labelled(document, "原文", entry.text)
            _labelled(document, "简介", entry.summary)
            _labelled(document, "用法", usage)
            _labelled(document, "出处", entry.origin)
            _labelled(document, "来源", entry.source)
    return _bytes(document)


def lesson_docx(heading: str, goal: str, content: dict[str, Any], version: int) -> bytes:
    document = Document()
    _line(document, heading, 16, bold=True, center=True)
    _line(document, f"第 {version} 版" + (f" · 教学目标方向：{goal}" if goal else ""), 10, center=True)
    for key, name in LESSON_SECTIONS:
        _heading(document, name)
        items = content.get(key) or []
        if key == "steps":
            table = document.add_table(rows=1, cols=3)
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, ("环节", "时间", "师生活动"), strict=True):
                _font(cell.paragraphs[0].add_run(text), 10.5, bold=True)
            for step in items:
                cells = table.add_row().cells
                for cell, text in zip(cells, (step["name"], f"{step['minutes']} 分钟", step["activity"]), strict=True):
                    _font(cell.paragraphs[0].add_run(str(text)), 10.5)
            total = sum(int(step["minutes"]) for step in items)
            _line(document, f"合计 {total} 分钟", 10)
        elif key == "examples":
            for number, example in enumerate(items, start=1):
                _line(document, f"例 {number}", 10.5, bold=True)
                _labelled(document, "原句", example["original"])
                _labelled(document, "修改", example["revised"])
                _labelled(document, "说明", example["note"])
        else:
            for number, item in enumerate(items, start=1):
                _line(document, f"{number}. {item}")
    return _bytes(document)
