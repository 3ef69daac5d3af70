"""The student chat in a real browser (Debian chromium, Playwright) against the web server and a grading worker
with the tiny model (PostgreSQL + Redis): a teacher opens the chat and makes a student's code; the student signs
up, asks about their graded essay, sees the answer arrive in pieces, reloads mid-answer, continues, gets a cited
material; a blocked word is stopped; the teacher sees the questions in the analytics."""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, ChatTurn, Classroom, EssayStatus, School, User, transaction
from shared.security import hash_password
from tests.chat_faults import GATE_DIR_ENV
from tests.factories import add_school, add_user
from tests.factories.builders import add_assignment, add_classroom, add_essay, add_grade, add_students
from tests.processes import ManagedProcess, PrivateRedis, free_port, wait_for, worker_env, worker_process
from tests.web.test_browser import CHROMIUM, CHROMIUM_FLAGS, PASSWORD, _healthy

pytestmark = [pytest.mark.slow, pytest.mark.browser]

STUDENT_PASSWORD = "autumn-lake-2024"
ESSAY = "读书的意义\n读书使人明智。古人说“腹有诗书气自华”，一个人读过的书会慢慢变成他看世界的眼晴。"
MATERIAL = "议论文的开头要开门见山，直接提出论点，也可以引用名言引出论点。\n结尾要呼应开头，升华主题。"


@dataclass
class Setup:
    teacher: str
    classroom: int
    school: int


@pytest.fixture()
def setup(pg_sessions: sessionmaker[Session]) -> Iterator[Setup]:
    tag = uuid.uuid4().hex[:8]
    with transaction(pg_sessions) as session:
        school = add_school(session, f"问答中学-{tag}")
        teacher = add_user(session, f"chat-teacher-{tag}", "周老师", school_id=school.id,
                           password_hash=hash_password(PASSWORD))
        classroom = add_classroom(session, school.id, teacher.id, f"高三（2）班-{tag}")
        zhang, _li = add_students(session, classroom.id, [("张三", "01"), ("李四", "02")])
        assignment = add_assignment(session, classroom.id, title="读书作文", created_by=teacher.id)
        essay = add_essay(session, assignment.id, zhang.id, ESSAY, status=EssayStatus.graded, title="读书的意义")
        add_grade(session, essay.id, {"content": 15, "expression": 14, "development": 10}, text=ESSAY,
                  errors=[("错别字", "眼晴", "眼睛", "“睛”误写为“晴”")], comment="观点明确，论证稍显单薄。")
        made = Setup(teacher.username, classroom.id, school.id)
    yield made
    with transaction(pg_sessions) as session:
        session.delete(session.get(Classroom, made.classroom))
        session.flush()
        for account in session.scalars(select(User).where(User.school_id == made.school)):
            session.delete(account)
        session.delete(session.get(School, made.school))


def test_a_student_chats_about_their_essay_in_the_browser(
    pg_url: str, private_redis: PrivateRedis, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, setup: Setup,
    tmp_path: Path,
) -> None:
    import playwright.sync_api as playwright_api

    if not CHROMIUM.exists():
        message = "Debian chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    gate = tmp_path / "gate"
    gate.mkdir()
    # A Redis of its own: a grading worker of another test on the shared db would take (and skip) the chat tasks.
    env_settings = {"database_url": pg_url, "broker_url": private_redis.url, "data_dir": str(tmp_path / "data")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = ManagedProcess([sys.executable, "-m", "services.cli", "web", "--port", str(port)],
                         worker_env(**env_settings, secret_key="browser-chat-secret"), tmp_path / "web.log").start()
    worker_settings = worker_env(**env_settings, model=str(tiny_model_dir), chat_max_new_tokens="32",
                                 engine_class="tests.chat_faults:ChatGateEngine")
    worker_settings[GATE_DIR_ENV] = str(gate)
    worker = worker_process(worker_settings, tmp_path / "worker.log", queues="gpu").start()
    material = tmp_path / "写作讲义.txt"
    material.write_text(MATERIAL, encoding="utf-8")
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="the web server to answer /healthz")
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
            try:
                teacher = browser.new_context(locale="zh-CN").new_page()
                code = _teacher_opens_the_chat(playwright_api, teacher, base, setup, material)
                student = browser.new_context(locale="zh-CN").new_page()
                _student_chats(playwright_api, student, base, code, gate, tag=setup.teacher)
                _teacher_sees_analytics(playwright_api, teacher, base, setup)
            finally:
                browser.close()
        with pg_sessions() as session:
            turns = session.scalars(select(ChatTurn).where(ChatTurn.classroom_id == setup.classroom)
                                    .order_by(ChatTurn.id)).all()
            assert [str(t.status) for t in turns] == ["done", "done", "blocked"]
            answered = session.scalars(select(AuditLog).where(AuditLog.action == "chat.answer",
                                                              AuditLog.object_id.in_([t.id for t in turns]))
                                       .order_by(AuditLog.object_id)).all()
            assert [a.details["history_turns"] for a in answered] == [0, 1]  # the second turn saw the first
    except BaseException:
        print("---- web log ----\n", web.log()[-4000:], "\n---- worker log ----\n", worker.log()[-6000:])
        raise
    finally:
        worker.stop()
        web.stop()


def _teacher_opens_the_chat(pw, page, base: str, setup: Setup, material: Path) -> str:  # type: ignore[no-untyped-def]
    expect = pw.expect
    page.goto(f"{base}/login")
    page.fill("input[name=username]", setup.teacher)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/classes/{setup.classroom}")
    page.click("#students-online-link")
    expect(page.locator("h1")).to_have_text("学生端与问答")
    page.check("input[name=grades_open]")
    page.check("input[name=chat_open]")
    page.click("#access-form button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("已保存学生端设置")
    page.set_input_files("#material-form input[type=file]", str(material))
    page.click("#material-form button[type=submit]")
    expect(page.locator("#materials")).to_contain_text("写作讲义")
    page.locator("tr[data-student=张三] button:has-text('生成登录码')").click()
    code = page.locator("#new-code .code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", code)
    return code


def _student_chats(pw, page, base: str, code: str, gate: Path, *, tag: str) -> None:  # type: ignore[no-untyped-def]
    expect = pw.expect
    page.goto(f"{base}/student/join")
    page.fill("input[name=code]", code)
    page.fill("input[name=username]", f"zhangsan-{tag}")
    page.fill("input[name=password]", STUDENT_PASSWORD)
    page.click("#join-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("张三 的作文")
    expect(page.locator("#my-essays")).to_contain_text("读书的意义")
    expect(page.locator("#my-essays")).to_contain_text("39")  # 15 + 14 + 10, released
    page.click("#chat-link")

    page.fill("#ask-form textarea", "我的作文《读书的意义》开头怎么写才能开门见山？")
    page.click("#ask-form button[type=submit]")
    first = page.locator(".turn").nth(0)
    # The worker pauses mid-answer (tests/chat_faults.py) until the gate opens: what is on the page is partial.
    wait_for(lambda: (gate / "chat-entered").exists(), timeout=300, what="the worker to start answering")
    expect(first).to_have_attribute("data-status", "streaming")
    expect(first.locator(".answer")).not_to_have_text(re.compile(r"^\s*$"))
    partial = first.locator(".answer").inner_text()

    page.reload()  # mid-answer: the partial answer comes back from the database and the stream resumes
    first = page.locator(".turn").nth(0)
    expect(first).to_have_attribute("data-status", "streaming")
    assert first.locator(".answer").inner_text().strip().startswith(partial.strip()[:8])
    (gate / "chat-open").touch()
    expect(first).to_have_attribute("data-status", "done", timeout=120_000)
    assert len(first.locator(".answer").inner_text()) > len(partial)
    expect(first.locator(".sources")).to_contain_text("《写作讲义》第1段")
    expect(first.locator(".sources")).to_contain_text("我的作文《读书的意义》")

    page.fill("#ask-form textarea", "那作文的结尾怎么呼应开头？")
    page.click("#ask-form button[type=submit]")
    second = page.locator(".turn").nth(1)
    expect(second).to_have_attribute("data-status", "done", timeout=120_000)
    expect(second.locator(".sources")).to_contain_text("《写作讲义》")

    page.fill("#ask-form textarea", "作文里可以写赌博的故事吗")
    page.click("#ask-form button[type=submit]")
    third = page.locator(".turn").nth(2)
    expect(third).to_have_attribute("data-status", "blocked")
    expect(third.locator(".notice")).to_contain_text("不适宜的内容")
    page.reload()
    expect(page.locator(".turn")).to_have_count(3)


def _teacher_sees_analytics(pw, page, base: str, setup: Setup) -> None:  # type: ignore[no-untyped-def]
    expect = pw.expect
    page.goto(f"{base}/classes/{setup.classroom}/students-online")
    page.click("#analytics-link")
    expect(page.locator("#most-asked")).to_contain_text("我的作文《读书的意义》开头怎么写才能开门见山？")
    expect(page.locator("#per-student tr:has-text('张三') td.num")).to_have_text("3")
    expect(page.locator("#never-asked")).to_contain_text("李四")
    expect(page.locator("#blocked")).to_contain_text("作文里可以写赌博的故事吗")
