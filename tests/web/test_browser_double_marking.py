"""双评 in a real browser: a teacher sets double marking to "all" on a class of six, the tiny model grades in a real
worker, the teacher second-reads every essay blind, the one beyond tolerance goes to 三评, the school admin settles it,
the final scores and versions follow the rubric, and the class workbook's 评分一致性 sheet recomputes from the
readings. Headless Debian chromium, the web app in its own server process, PostgreSQL and the Redis test db.
"""

from __future__ import annotations

import io
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import DoubleMarkCase, Grade, Role, User, transaction
from shared.prompts.rubric import final_score, load_rubric
from shared.rater_agreement import mean_bias, quadratic_weighted_kappa
from shared.security import hash_password
from tests.essays import make_essay
from tests.factories import add_user, make_class
from tests.integration.test_reports import rows_after
from tests.processes import ManagedProcess, free_port, wait_for, worker_env, worker_process
from tests.web.test_browser import CHROMIUM, CHROMIUM_FLAGS, GRADING_TIMEOUT_MS, _healthy

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PASSWORD = "double-marking-password-1"
RUBRIC = load_rubric("gaokao-national")
DIMS = [dim.key for dim in RUBRIC.dimensions]


@dataclass(frozen=True)
class Setup:
    teacher: str
    admin: str
    teacher_id: int
    admin_id: int
    assignment_id: int
    essay_ids: list[int]


@pytest.fixture()
def setup(pg_sessions: sessionmaker[Session], schools: list[int]) -> Iterator[Setup]:
    tag = uuid.uuid4().hex[:6]
    fixture = make_class(pg_sessions, [make_essay(40 + i) for i in range(6)], tag=tag,
                         student_names=["陈一", "林二", "黄三", "周四", "吴五", "郑六"])
    schools.append(fixture.school_id)
    with transaction(pg_sessions) as session:
        session.execute(update(User).where(User.id == fixture.teacher_id)
                        .values(password_hash=hash_password(PASSWORD)))
        teacher = session.get(User, fixture.teacher_id)
        assert teacher is not None
        admin = add_user(session, f"dm-admin-{tag}", "教务处", role=Role.school_admin, school_id=fixture.school_id,
                         password_hash=hash_password(PASSWORD))
        yield_value = Setup(teacher.username, admin.username, teacher.id, admin.id, fixture.assignment_id,
                            fixture.essay_ids)
    yield yield_value


def test_double_marking_in_the_browser(pg_url: str, pg_sessions: sessionmaker[Session], redis_url: str,
                                       tiny_model_dir: Path, setup: Setup, tmp_path: Path) -> None:
    import playwright.sync_api as playwright_api

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env_settings = {"database_url": pg_url, "broker_url": redis_url, "data_dir": str(tmp_path / "data")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = ManagedProcess([sys.executable, "-m", "services.cli", "web", "--port", str(port)],
                         worker_env(**env_settings, secret_key="browser-test-secret-key"), tmp_path / "web.log").start()
    worker = worker_process(worker_env(**env_settings, model=str(tiny_model_dir)), tmp_path / "worker.log",
                            queues="gpu,reports").start()
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="the web server to answer /healthz")
        with playwright_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(dir=tmp_path, prefix="chromium-"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_FLAGS, accept_downloads=True, locale="zh-CN",
            )
            try:
                _walk_through(playwright_api.expect, context.new_page(), base, setup, pg_sessions)
            finally:
                context.close()
    except BaseException:
        print("---- web log ----\n", web.log()[-4000:], "\n---- worker log ----\n", worker.log()[-6000:])
        raise
    finally:
        worker.stop()
        web.stop()


def _login(expect, page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text(re.compile("班级"))  # 我的班级 for a teacher, 班级 for an admin


def _model_grades(sessions: sessionmaker[Session], essay_ids: list[int]) -> dict[int, Grade]:
    with sessions() as session:
        return {g.essay_id: g for g in session.scalars(
            select(Grade).where(Grade.essay_id.in_(essay_ids), Grade.version == 1))}


def _walk_through(expect, page, base: str, setup: Setup, sessions: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    _login(expect, page, base, setup.teacher)

    page.goto(f"{base}/assignments/{setup.assignment_id}/double-marking")
    page.select_option("#dm-mode", "all")
    page.click("#double-marking-form button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("全部双评")

    page.goto(f"{base}/assignments/{setup.assignment_id}")
    page.click("button:has-text('重新排队等待中的作文')")
    expect(page.locator("#progress-percent")).to_have_text("100%", timeout=GRADING_TIMEOUT_MS)
    expect(page.locator("#p-graded")).to_have_text("6")
    page.reload()
    expect(page.locator("#a-awaiting-second")).to_have_text("6")

    model = _model_grades(sessions, setup.essay_ids)
    assert len(model) == 6
    page.goto(f"{base}/marking")
    expect(page.locator("#q-second tbody tr")).to_have_count(6)
    hrefs = page.locator("#q-second tbody a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    queued = [int(re.search(r"/essays/(\d+)/", href).group(1)) for href in hrefs]  # type: ignore[union-attr]
    assert sorted(queued) == sorted(setup.essay_ids)
    far_id = queued[0]
    teacher_dims: dict[int, dict[str, int]] = {}
    for essay_id in queued:
        page.goto(f"{base}/essays/{essay_id}/second-read")
        expect(page.locator("#second-read-form")).to_be_visible()
        assert page.locator("#readings").count() == 0  # blind: the model's scores are not on the page
        dims = dict(model[essay_id].dimension_scores)
        if essay_id == far_id:  # the whole range away from the model: beyond the 6-point tolerance
            dims = {key: 0 if sum(dims.values()) >= 30 else 20 for key in DIMS}
        teacher_dims[essay_id] = dims
        for key in DIMS:
            page.fill(f"#second-read-form input[name=score_{key}]", str(dims[key]))
        page.click("#second-read-form button[type=submit]")
        expect(page.locator(".flash-ok")).to_contain_text("二评已保存")
        expect(page.locator("#readings tbody tr").first).to_contain_text("一评（模型）")
    page.goto(f"{base}/assignments/{setup.assignment_id}")
    expect(page.locator("#a-awaiting-second")).to_have_text("0")
    expect(page.locator("#a-awaiting-arbitration")).to_have_text("1")
    expect(page.locator("#a-settled")).to_have_text("5")

    page.click("form[action='/logout'] button")
    _login(expect, page, base, setup.admin)
    page.goto(f"{base}/marking")
    expect(page.locator("#q-arbitration tbody tr")).to_have_count(1)
    page.click("#q-arbitration tbody a")
    expect(page.locator("#arbitrate-form")).to_be_visible()
    third = teacher_dims[far_id]  # agrees with the second reading: the mean of the closest two stands
    for key in DIMS:
        page.fill(f"#arbitrate-form input[name=score_{key}]", str(third[key]))
    page.click("#arbitrate-form button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("最终分")

    with sessions() as session:
        for essay_id in setup.essay_ids:
            grades = list(session.scalars(select(Grade).where(Grade.essay_id == essay_id).order_by(Grade.version)))
            case = session.scalar(select(DoubleMarkCase).where(DoubleMarkCase.essay_id == essay_id))
            assert case is not None
            readings = [g.total for g in grades if g.reading != "final"]
            outcome = final_score(readings, RUBRIC)
            assert case.final_total == outcome.score == grades[-1].total and case.status == "settled"
            expected = [(None, None), ("second", setup.teacher_id)]
            if essay_id == far_id:
                assert abs(readings[0] - readings[1]) > RUBRIC.tolerance_for()
                expected.append(("third", setup.admin_id))
            else:
                assert abs(readings[0] - readings[1]) <= RUBRIC.tolerance_for()
            expected.append(("final", setup.admin_id if essay_id == far_id else setup.teacher_id))
            assert [(g.reading, g.created_by) for g in grades] == expected
            assert grades[1].dimension_scores == teacher_dims[essay_id]
    expect(page.locator("#final-total")).to_have_text(str(case_total(sessions, far_id)))

    page.goto(f"{base}/assignments/{setup.assignment_id}/report")
    page.click("button:has-text('生成报表')")  # 重新生成报表 where grading's completion already made one
    link = page.locator("#report-jobs tbody tr").first.locator("a.button")  # the newest job, requested just now
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
    ws = load_workbook(io.BytesIO(Path(path).read_bytes()))["评分一致性"]
    pairs = rows_after(ws, ["作文编号", "学生", "模型一评", "教师二评"])
    with sessions() as session:
        stored = {g.essay_id: g.total for g in session.scalars(
            select(Grade).where(Grade.essay_id.in_(setup.essay_ids), Grade.reading == "second"))}
    assert {row[0]: (row[2], row[3]) for row in pairs} == {
        essay_id: (model[essay_id].total, stored[essay_id]) for essay_id in setup.essay_ids}
    overall = next(row for row in ws.iter_rows(values_only=True) if row[0] == "全部")
    teacher_totals, model_totals = [row[3] for row in pairs], [row[2] for row in pairs]
    assert overall[1] == 6 and overall[6] == 1
    assert overall[2] == quadratic_weighted_kappa(teacher_totals, model_totals, low=0, high=RUBRIC.total)
    assert overall[3] == mean_bias(teacher_totals, model_totals)
    assert overall[4] == 5 / 6
    assert not console_errors, console_errors


def case_total(sessions: sessionmaker[Session], essay_id: int) -> int:
    with sessions() as session:
        total = session.scalar(select(DoubleMarkCase.final_total).where(DoubleMarkCase.essay_id == essay_id))
        assert total is not None
        return total
