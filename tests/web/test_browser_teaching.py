"""备课 in a real browser (issue 20): headless Debian chromium against the web app in its own process and a gpu
worker with the tiny model. A teacher opens a graded assignment, generates 立意, picks one, gets 素材 from the
library, generates a 教案 from the class's errors and downloads it as .docx (PostgreSQL, a Redis of its own)."""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from docx import Document
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Classroom, MaterialPick, School, TopicAnalysis, User, transaction
from shared.prompts.material_library import load_library
from shared.prompts.teaching import LESSON_SECTIONS
from shared.security import hash_password
from tests.factories import add_assignment, add_classroom, add_essay, add_grade, add_school, add_students, add_user
from tests.processes import ManagedProcess, PrivateRedis, free_port, wait_for, worker_env, worker_process
from tests.web.test_browser import CHROMIUM, CHROMIUM_FLAGS, PASSWORD, _healthy

pytestmark = [pytest.mark.slow, pytest.mark.browser]

GENERATION_TIMEOUT_MS = 240_000
ESSAYS = [
    ("陈一", "手机让我们联系更方便，但是面对面的交流却少了。科技发展的很快。",
     [("用词不当", "发展的很快", "发展得很快")]),
    ("林二", "科技是一把双刃剑。它即带来了便利，也带来了问题。", [("错别字", "即带来", "既带来")]),
    ("黄三", "我们要正确的使用科技，让它服务于人。", [("用词不当", "正确的使用", "正确地使用")]),
]


@dataclass
class GradedClass:
    username: str
    assignment_id: int
    prompt: str


@pytest.fixture()
def graded_class(pg_sessions: sessionmaker[Session]) -> Iterator[GradedClass]:
    """A teacher's class whose essays were graded (errors located), written directly: no grading needed here."""
    tag = uuid.uuid4().hex[:8]
    prompt = f"阅读下面的材料，根据要求写作。有人说科技让生活更便利，也有人说科技让人更孤独。（{tag}）"
    with transaction(pg_sessions) as session:
        school = add_school(session, f"备课中学-{tag}")
        teacher = add_user(session, f"teach-{tag}", "陈老师", school_id=school.id,
                           password_hash=hash_password(PASSWORD))
        classroom = add_classroom(session, school.id, teacher.id, "高三（2）班")
        students = add_students(session, classroom.id, [(name, None) for name, _, _ in ESSAYS])
        assignment = add_assignment(session, classroom.id, title="科技与孤独", prompt_text=prompt,
                                    created_by=teacher.id)
        for student, (_, text, errors) in zip(students, ESSAYS, strict=True):
            essay = add_essay(session, assignment.id, student.id, text)
            add_grade(session, essay.id, (14, 12, 8), text=text, errors=errors)
        school_id, teacher_id = school.id, teacher.id
        graded = GradedClass(teacher.username, assignment.id, prompt)
    yield graded
    with transaction(pg_sessions) as session:
        session.execute(delete(TopicAnalysis).where(TopicAnalysis.prompt_text == prompt))
        session.execute(delete(MaterialPick).where(MaterialPick.prompt_text == prompt))
        session.execute(delete(Classroom).where(Classroom.school_id == school_id))
        session.execute(delete(User).where(User.id == teacher_id))
        session.execute(delete(School).where(School.id == school_id))


def test_teacher_prepares_a_lesson_in_the_browser(
    pg_url: str, private_redis: PrivateRedis, tiny_model_dir: Path, graded_class: GradedClass, tmp_path: Path,
    pg_sessions: sessionmaker[Session],
) -> None:
    import playwright.sync_api as playwright_api

    if not CHROMIUM.exists():
        message = "Debian chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # A broker of the test's own: no other test's worker may take these tasks, nor this worker theirs.
    env_settings = {"database_url": pg_url, "broker_url": private_redis.url, "data_dir": str(tmp_path / "data")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = ManagedProcess(
        [sys.executable, "-m", "services.cli", "web", "--port", str(port)],
        worker_env(**env_settings, secret_key="browser-test-secret-key"), tmp_path / "web.log",
    ).start()
    worker = worker_process(worker_env(**env_settings, model=str(tiny_model_dir)), tmp_path / "worker.log",
                            queues="gpu").start()
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="the web server to answer /healthz")
        with playwright_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(dir=tmp_path, prefix="chromium-"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_FLAGS, accept_downloads=True, locale="zh-CN",
            )
            try:
                _walk_through(playwright_api, context.new_page(), base, graded_class)
            finally:
                context.close()
    except BaseException:
        print("---- web log ----\n", web.log()[-4000:], "\n---- worker log ----\n", worker.log()[-6000:])
        raise
    finally:
        worker.stop()
        web.stop()
    with pg_sessions() as session:
        analysis = session.scalar(select(TopicAnalysis).where(TopicAnalysis.prompt_text == graded_class.prompt))
        assert analysis is not None and analysis.model_name  # written by the worker's model


def _walk_through(pw, page, base: str, graded: GradedClass) -> None:  # type: ignore[no-untyped-def]
    expect = pw.expect
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{base}/assignments/{graded.assignment_id}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", graded.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("科技与孤独")

    page.click("#topic-link")
    expect(page.locator("h1")).to_have_text("题目解析")
    page.click("#analyse")
    angles = page.locator("#angles li.angle")
    expect(angles.first).to_be_visible(timeout=GENERATION_TIMEOUT_MS)  # the page reloads when the worker is done
    count = angles.count()
    assert 3 <= count <= 5
    expect(angles.first.locator(".tag").first).to_have_text("最稳妥")
    expect(angles.last.locator(".tag").first).to_have_text("最大胆")

    angles.first.locator("button.choose-angle").click()
    expect(page.locator("#angles li.angle.chosen")).to_have_count(1)
    materials = page.locator("#materials article.material")
    expect(materials.first).to_be_visible(timeout=GENERATION_TIMEOUT_MS)
    expect(page.locator("#materials-status")).to_have_text("已完成")
    library = load_library()
    for index in range(materials.count()):
        article = materials.nth(index)
        entry = library.get(article.get_attribute("data-id") or "")
        assert entry is not None  # the model could only choose library entries
        expect(article.locator("h3")).to_contain_text(entry.title)
        expect(article).to_contain_text(entry.source)

    with page.expect_download() as download_info:
        page.click("#topic-docx")
    topic_doc = Document(io.BytesIO(Path(download_info.value.path()).read_bytes()))
    topic_text = "\n".join(p.text for p in topic_doc.paragraphs)
    assert "立意角度（从稳妥到大胆）" in topic_text and "推荐素材" in topic_text

    page.fill("#lesson-form input[name=goal]", "掌握议论文对比论证")
    page.click("#create-lesson")
    expect(page.locator("#lesson section.lesson-section")).to_have_count(len(LESSON_SECTIONS),
                                                                          timeout=GENERATION_TIMEOUT_MS)
    expect(page.locator("#lesson-status")).to_have_text("已完成")
    page.click("#lesson-state summary")
    expect(page.locator("#lesson-state")).to_contain_text("用词不当 2 处")  # the class's own errors went in

    with page.expect_download() as download_info:
        page.click("#lesson-docx")
    assert download_info.value.suggested_filename.endswith("第1版.docx")
    document = Document(io.BytesIO(Path(download_info.value.path()).read_bytes()))
    text = "\n".join(p.text for p in document.paragraphs)
    for _, name in LESSON_SECTIONS:
        assert name in text
    assert document.tables and [c.text for c in document.tables[0].rows[0].cells] == ["环节", "时间", "师生活动"]
    assert console_errors == []
