"""One teacher's whole afternoon in a real browser: headless Debian chromium driven by Playwright against the web
app in its own server process and a real grading worker with the tiny model (PostgreSQL + the Redis test db).
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import tempfile
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from shared.models import transaction
from shared.security import hash_password
from tests.essays import make_essay
from tests.factories import add_school, add_user
from tests.processes import ManagedProcess, free_port, wait_for, worker_env, worker_process

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
PASSWORD = "browser-password-1"
STUDENTS = [("陈一", "2024001"), ("林二", "2024002"), ("黄三", "2024003")]
GRADING_TIMEOUT_MS = 540_000


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture()
def teacher(pg_sessions: sessionmaker[Session]) -> Iterator[str]:
    tag = uuid.uuid4().hex[:8]
    username = f"browser-{tag}"
    with transaction(pg_sessions) as session:
        school = add_school(session, f"浏览器中学-{tag}")
        add_user(session, username, "陈老师", school_id=school.id, password_hash=hash_password(PASSWORD))
    yield username


def _inputs(directory: Path) -> tuple[Path, Path]:
    roster = directory / "名单.csv"
    with roster.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["姓名", "学号"])
        writer.writerows(STUDENTS)
    essays = directory / "作文.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, (name, _number) in enumerate(STUDENTS):
            # A half-width comma between Chinese characters: a mechanical error the page must highlight.
            archive.writestr(f"{name}.txt", make_essay(index + 7).replace("，", ",", 1))
    essays.write_bytes(buffer.getvalue())
    return roster, essays


def test_teacher_grades_a_class_in_the_browser(
    pg_url: str, redis_url: str, tiny_model_dir: Path, teacher: str, tmp_path: Path
) -> None:
    import playwright.sync_api as playwright_api

    if not CHROMIUM.exists():
        message = "Debian chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (.ci/run): a missing browser there is a failure
        pytest.skip(message)
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # no stale tasks from earlier tests for this worker
    data_dir = tmp_path / "data"
    env_settings = {"database_url": pg_url, "broker_url": redis_url, "data_dir": str(data_dir)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = ManagedProcess(
        [sys.executable, "-m", "services.cli", "web", "--port", str(port)],
        worker_env(**env_settings, secret_key="browser-test-secret-key"), tmp_path / "web.log",
    ).start()
    worker = worker_process(worker_env(**env_settings, model=str(tiny_model_dir)), tmp_path / "worker.log",
                            queues="gpu,reports").start()
    roster_file, essays_file = _inputs(tmp_path)
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="the web server to answer /healthz")
        with playwright_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(dir=tmp_path, prefix="chromium-"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_FLAGS, accept_downloads=True, locale="zh-CN",
            )
            try:
                _walk_through(playwright_api, context.new_page(), base, teacher, roster_file, essays_file)
            finally:
                context.close()
    except BaseException:
        print("---- web log ----\n", web.log()[-4000:], "\n---- worker log ----\n", worker.log()[-6000:])
        raise
    finally:
        worker.stop()
        web.stop()


def _walk_through(pw, page, base: str, username: str, roster: Path, essays: Path) -> None:  # type: ignore[no-untyped-def]
    expect = pw.expect
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{base}/classes")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("我的班级")

    page.click("text=新建班级")
    page.fill("input[name=name]", "高三（5）班")
    page.click("button:has-text('创建')")
    expect(page.locator(".flash-ok")).to_contain_text("已创建班级")

    page.set_input_files("#roster-form input[type=file]", str(roster))
    page.click("#roster-form button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("新增 3 名学生")
    expect(page.locator("#roster tbody tr")).to_have_count(3)

    page.click("text=布置作业")
    page.fill("input[name=title]", "期中考试作文")
    page.fill("textarea[name=prompt_text]", "阅读下面的材料，根据要求写一篇不少于 800 字的议论文。")
    page.click("#assignment-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("上传作文")

    page.set_input_files("#upload-form input[type=file]", str(essays))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#preview tbody tr")).to_have_count(3)
    expect(page.locator("#confirm-form button")).to_contain_text("确认导入 3 篇")
    page.click("#confirm-form button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("已导入 3 篇作文")

    # The progress bar is updated by progress.js polling progress.json.
    expect(page.locator("#progress-percent")).to_have_text("100%", timeout=GRADING_TIMEOUT_MS)
    expect(page.locator("#p-graded")).to_have_text("3")
    expect(page.locator("#p-state")).to_have_text("已全部完成")

    page.click("#results-link")
    expect(page.locator("#results tbody tr")).to_have_count(3)
    page.click("#results tbody tr >> nth=0 >> a")
    expect(page.locator("#essay-text mark.err").first).to_be_visible()
    expect(page.locator("#error-list li").first).to_contain_text("标点")
    first_mark = page.locator("#essay-text mark.err").first
    assert "→" in (first_mark.get_attribute("title") or "") or "标点" in (first_mark.get_attribute("title") or "")

    page.fill("#override-form input[name=score_content]", "18")
    page.fill("#override-form input[name=reason]", "复核：立意准确")
    page.click("#override-form button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("第 2 版")
    expect(page.locator("#history tbody")).to_contain_text("教师")

    page.click("nav.crumbs >> text=期中考试作文")
    page.click("text=成绩报表（Excel）")
    page.click("button:has-text('生成报表')")
    expect(page.locator("#report-jobs")).to_be_visible()
    link = page.locator("#report-jobs a.button").first
    for _ in range(120):
        if link.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    assert link.count(), "the class workbook never became ready"
    with page.expect_download() as download_info:
        link.click()
    path = download_info.value.path()
    assert path is not None
    workbook = load_workbook(io.BytesIO(Path(path).read_bytes()), read_only=True)
    assert "概览" in workbook.sheetnames and "学生" in workbook.sheetnames
    assert not console_errors, console_errors


def test_progress_moves_essay_by_essay_and_the_workbook_link_appears_by_itself(
    pg_url: str, redis_url: str, pg_sessions: sessionmaker[Session], tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The grading worker's engine holds each finished answer at a gate (tests.faults.StepGateEngine); the test opens
    the gates one at a time and the open page, never reloaded, shows 1, 2, 3 graded with a measured ETA, then the
    class workbook's download link once the worker has built it."""
    import playwright.sync_api as playwright_api
    import redis
    from sqlalchemy import update

    from shared.models import User
    from shared.settings import Settings
    from tests.essays import make_essays
    from tests.factories import make_class
    from tests.faults import GATE_DIR_ENV
    from tests.grading_run import enqueue_class

    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is not installed (apt-get install -y chromium)")
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    redis.Redis.from_url(redis_url).flushdb()
    tag = uuid.uuid4().hex[:6]
    fixture = make_class(pg_sessions, make_essays(3, seed=11), tag=tag)
    with transaction(pg_sessions) as session:
        session.execute(update(User).where(User.id == fixture.teacher_id).values(password_hash=hash_password(PASSWORD)))
    gate = tmp_path / "gate"
    gate.mkdir()
    data_dir = tmp_path / "data"
    env_settings = {"database_url": pg_url, "broker_url": redis_url, "data_dir": str(data_dir)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = ManagedProcess([sys.executable, "-m", "services.cli", "web", "--port", str(port)],
                         worker_env(**env_settings, secret_key="browser-test-secret-key"), tmp_path / "web.log").start()
    worker_settings = worker_env(**env_settings, model=str(tiny_model_dir), engine_class="tests.faults:StepGateEngine")
    worker_settings[GATE_DIR_ENV] = str(gate)
    worker = worker_process(worker_settings, tmp_path / "worker.log", queues="gpu,reports").start()
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="the web server to answer /healthz")
        enqueue_class(Settings(database_url=pg_url, broker_url=redis_url), pg_sessions, fixture.assignment_id)
        with playwright_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(dir=tmp_path, prefix="chromium-"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_FLAGS, accept_downloads=True, locale="zh-CN",
            )
            try:
                page = context.new_page()
                expect = playwright_api.expect
                page.goto(f"{base}/login?next=/assignments/{fixture.assignment_id}")
                page.fill("input[name=username]", f"teacher-{tag}")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                expect(page.locator("#progress")).to_be_visible()
                page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
                for step, percent in ((1, "33%"), (2, "66%"), (3, "100%")):
                    wait_for(lambda step=step: (gate / f"entered-{step}").exists(), timeout=GRADING_TIMEOUT_MS / 1000,
                             what=f"answer {step} to be finished and held at the gate")
                    expect(page.locator("#p-graded")).to_have_text(str(step - 1))
                    (gate / f"open-{step}").touch()
                    expect(page.locator("#p-graded")).to_have_text(str(step), timeout=60_000)
                    expect(page.locator("#progress-percent")).to_have_text(percent)
                    if step < 3:  # a rate measured from the essays written so far gives an ETA
                        expect(page.locator("#p-eta")).to_contain_text("约")
                expect(page.locator("#p-state")).to_have_text("已全部完成")
                link = page.locator("#workbook-link")
                expect(link).to_be_visible(timeout=GRADING_TIMEOUT_MS)
                expect(page.locator("#workbook-state")).to_contain_text("已完成")
                assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
                with page.expect_download() as download_info:
                    link.click()
                path = download_info.value.path()
                assert path is not None
                workbook = load_workbook(io.BytesIO(Path(path).read_bytes()), read_only=True)
                assert "概览" in workbook.sheetnames and "学生" in workbook.sheetnames
            finally:
                context.close()
    except BaseException:
        print("---- web log ----\n", web.log()[-4000:], "\n---- worker log ----\n", worker.log()[-6000:])
        raise
    finally:
        for step in (1, 2, 3):
            (gate / f"open-{step}").touch()  # never leave the worker held at a gate
        worker.stop()
        web.stop()
