"""The 备课 Word files in LibreOffice (issue 20): a 题目解析 and a 教案 convert to PDF with their Chinese text, every
section and the steps table intact (poppler reads the text back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.web.teaching_docx import lesson_docx, topic_docx
from shared.prompts.material_library import load_library
from shared.prompts.teaching import LESSON_SECTIONS
from tests.factories.world import LESSON_CONTENT, TEACHING_ANGLES
from tests.render import page_texts, require, to_pdf

pytestmark = pytest.mark.slow


def _flat(text: str) -> str:
    return "".join(text.split())


def test_topic_and_lesson_documents_render_in_libreoffice(tmp_path: Path) -> None:
    require("soffice", "pdftotext")
    library = load_library()
    picks = [(library.get("saihanba"), "用作第二段的事实论据，说明坚持的力量。")]
    topic = tmp_path / "topic.docx"
    topic.write_bytes(topic_docx("科技与孤独", "阅读下面的材料，根据要求写作。", TEACHING_ANGLES, 1, picks))
    lesson = tmp_path / "lesson.docx"
    lesson.write_bytes(lesson_docx("高三（2）班 · 科技与孤独 · 作文讲评教案", "掌握议论文对比论证", LESSON_CONTENT, 2))

    topic_text = _flat("".join(page_texts(to_pdf(topic, tmp_path))))
    for angle in TEACHING_ANGLES:
        assert _flat(angle["thesis"]) in topic_text and _flat(angle["off_topic"]) in topic_text
    assert "【稳妥】" not in topic_text and "【最稳妥】" in topic_text and "（已选）" in topic_text
    assert _flat(library.get("saihanba").source) in topic_text

    lesson_text = _flat("".join(page_texts(to_pdf(lesson, tmp_path))))
    for _, name in LESSON_SECTIONS:
        assert name in lesson_text
    for step in LESSON_CONTENT["steps"]:
        assert _flat(step["activity"]) in lesson_text and f"{step['minutes']}分钟" in lesson_text
    assert "合计40分钟" in lesson_text and "第2版" in lesson_text
