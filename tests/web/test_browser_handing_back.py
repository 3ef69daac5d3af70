"""Handing back marked essays in a real browser (headless Debian chromium, Playwright) against the web app in its
own server process: the essay page printed (one A4 side, no navigation or forms), one student's feedback sheet as
PDF and Word, and the whole class as one PDF (a page per student) and a zip of Word files."""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from docx import Document
from sqlalchemy.orm import Session, sessionmaker

from shared.models import EssayStatus, transaction
from shared.security import hash_password
from tests.essays import make_essay
from tests.factories import (
    add_assignment,
    add_classroom,
    add_essay,
    add_grade,
    add_school,
    add_students,
    add_training_plan,
    add_user,
)
from tests.processes import ManagedProcess, free_port, wait_for, worker_env
from tests.render import page_count, page_texts, require
from tests.web.test_browser import CHROMIUM, CHROMIUM_FLAGS, PASSWORD, _healthy

pytestmark = [pytest.mark.slow, pytest.mark.browser]

STUDENTS = [("陈一", "2024001"), ("林二", "2024002"), ("黄三", "2024003")]
COMMENT = "{name}的作文中心明确，结构完整。"
GOAL = "下一篇表达得分率从 40% 提高到 60% 以上"


@dataclass
class Marked:
    username: str
    assignment_id: int
    essay_ids: list[int]
    texts: list[str]


@pytest.fixture()
def marked(pg_sessions: sessionmaker[Session], schools: list[int]) -> Marked:
    """A teacher's class of three, two graded (one with a training plan), one still queued."""
    tag = uuid.uuid4().hex[:8]
    texts = [make_essay(seed, min_chars=700, max_chars=800) for seed in (3, 4, 5)]
    with transaction(pg_sessions) as session:
        school = add_school(session, f"反馈中学-{tag}")
        schools.append(school.id)
        teacher = add_user(session, f"handback-{tag}", "陈老师", school_id=school.id,
                           password_hash=hash_password(PASSWORD))
        classroom = add_classroom(session, school.id, teacher.id, "高三（2）班")
        students = add_students(session, classroom.id, STUDENTS)
        assignment = add_assignment(session, classroom.id, title="期末作文", created_by=teacher.id)
        essays = []
        for index, (student, text) in enumerate(zip(students, texts, strict=True)):
            status = EssayStatus.queued if index == 2 else EssayStatus.graded
            essays.append(add_essay(session, assignment.id, student.id, text, status=status))
        for index in (0, 1):
            quote = texts[index].split("\n")[1][2:6]
            add_grade(session, essays[index].id, {"content": 14 + index, "expression": 8, "development": 12},
                      text=texts[index], errors=[("错别字", quote, "订正", "字形相近")],
                      comment=COMMENT.format(name=STUDENTS[index][0]), bands={"content": "二等"})
        add_training_plan(session, students[0].id, essay_ids=[essays[0].id], narrative="略。", focus_areas=[
            {"kind": "dimension", "key": "expression", "label": "表达", "reason": "平均得分率 40%", "goal": GOAL,
             "exercises": [{"title": "结构提纲训练", "detail": "动笔前先列提纲。"}]}])
        return Marked(teacher.username, assignment.id, [e.id for e in essays], texts)


def test_teacher_prints_and_downloads_feedback_sheets_in_the_browser(
    pg_url: str, redis_url: str, marked: Marked, tmp_path: Path
) -> None:
    import playwright.sync_api as playwright_api

    if not CHROMIUM.exists():
        message = "Debian chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    require("pdfinfo", "pdftotext")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = ManagedProcess(
        [sys.executable, "-m", "services.cli", "web", "--port", str(port)],
        worker_env(database_url=pg_url, broker_url=redis_url, data_dir=str(tmp_path / "data"),
                   secret_key="browser-test-secret-key"), tmp_path / "web.log",
    ).start()
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="the web server to answer /healthz")
        with playwright_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(dir=tmp_path, prefix="chromium-"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_FLAGS, accept_downloads=True, locale="zh-CN",
            )
            try:
                _hand_back(playwright_api.expect, context.new_page(), base, marked, tmp_path)
            finally:
                context.close()
    except BaseException:
        print("---- web log ----\n", web.log()[-4000:])
        raise
    finally:
        web.stop()


def _download(page, selector: str, path: Path) -> Path:  # type: ignore[no-untyped-def]
    with page.expect_download() as download_info:
        page.click(selector)
    download_info.value.save_as(path)
    return path


def _flat(text: str) -> str:
    return "".join(text.split())


def _hand_back(expect, page, base: str, marked: Marked, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{base}/essays/{marked.essay_ids[0]}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", marked.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#essay-text mark.err")).to_have_count(1)

    # Printed: the essay, its marks, the scores and the comment on one A4 side; no navigation, forms or buttons.
    page.emulate_media(media="print")
    expect(page.locator("#override-form")).to_be_hidden()
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.locator("#feedback-links")).to_be_hidden()
    printed = tmp_path / "printed.pdf"
    printed.write_bytes(page.pdf(format="A4", print_background=True, prefer_css_page_size=True))
    assert page_count(printed) == 1
    text = _flat(page_texts(printed)[0])
    assert _flat(marked.texts[0].split("\n")[1][8:40]) in text and "陈一的作文中心明确，结构完整。" in text
    assert "高三（2）班" in text and "期末作文" in text and "分项得分" in text and "错别字" in text
    assert "教师改分" not in text and "评分历史" not in text and "退出" not in text
    page.emulate_media(media="screen")

    # One student's sheet, as PDF and as Word.
    sheet = page_texts(_download(page, "#feedback-sheet-pdf", tmp_path / "one.pdf"))
    assert len(sheet) == 1
    flat = _flat(sheet[0])
    assert "陈一（2024001）" in flat and "陈一的作文中心明确，结构完整。" in flat and _flat(GOAL) in flat
    document = Document(str(_download(page, "#feedback-sheet-docx", tmp_path / "one.docx")))
    paragraphs = "\n".join(p.text for p in document.paragraphs)
    assert "陈一的作文中心明确，结构完整。" in paragraphs and GOAL in paragraphs

    # The whole class: one PDF page per graded student, in roster order; a zip of one Word file each.
    page.goto(f"{base}/assignments/{marked.assignment_id}")
    pdf = _download(page, "#feedback-pdf", tmp_path / "class.pdf")
    pages = page_texts(pdf)
    assert page_count(pdf) == 2 == len(pages)
    for index, (name, number) in enumerate(STUDENTS[:2]):
        flat = _flat(pages[index])
        assert f"{name}（{number}）" in flat and f"{name}的作文中心明确，结构完整。" in flat
        assert _flat(marked.texts[index].split("\n")[1][8:40]) in flat
    assert "黄三" not in "".join(pages)  # not graded yet
    with zipfile.ZipFile(_download(page, "#feedback-zip", tmp_path / "class.zip")) as archive:
        names = archive.namelist()
        assert [name.split("-")[:2] for name in names] == [["2024001", "陈一"], ["2024002", "林二"]]
        second = Document(io.BytesIO(archive.read(names[1])))
    assert any("林二的作文中心明确，结构完整。" in p.text for p in second.paragraphs)
    assert not console_errors, console_errors
