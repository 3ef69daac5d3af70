"""Assignments with shipped or school rubrics, the progress page and JSON, the sortable results table."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Assignment, Essay, EssayStatus, WorkerStatus
from shared.models.base import utcnow
from shared.worker_health import FAULT_NOTICE
from tests.factories.world import World
from tests.web.conftest import client_as, form

RUBRICS = Path(__file__).resolve().parents[1] / "data" / "rubrics"


def test_create_an_assignment_with_a_shipped_rubric(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["owner"])
    page = client.get(f"/classes/{world.classroom}/assignments/new").get_data(as_text=True)
    assert "gaokao-national@2024.1" in page
    response = client.post(f"/classes/{world.classroom}/assignments/new", data=form(
        title="月考作文", prompt_text="阅读下面的材料，根据要求写作。", genre="记叙文", rubric="gaokao-national@2024.1",
        required_length=""))
    assert response.status_code == 303
    with sessions() as session:
        created = session.scalar(select(Assignment).where(Assignment.classroom_id == world.classroom,
                                                          Assignment.title == "月考作文"))
    assert created is not None and (created.rubric_id, created.rubric_version) == ("gaokao-national", "2024.1")
    assert created.required_length == 800 and created.genre == "记叙文"
    bad = client.post(f"/classes/{world.classroom}/assignments/new", data=form(
        title="", prompt_text="", rubric="nope", required_length="5"))
    body = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "请填写作业名称" in body and "请选择评分标准" in body and "字数要求" in body


def test_school_admin_uploads_a_rubric_that_teachers_can_use(
    app: Flask, world: World, sessions: sessionmaker[Session], web_data_dir: Path
) -> None:
    admin = client_as(app, world.users["admin"])
    data = (RUBRICS / "school-simple.yaml").read_bytes()
    response = admin.post("/rubrics", data=form(file=(io.BytesIO(data), "school-simple.yaml")),
                          content_type="multipart/form-data", follow_redirects=True)
    assert "已添加本校评分标准" in response.get_data(as_text=True)
    stored = web_data_dir / "rubrics" / str(world.school_a) / "school-simple@2025.2.yaml"
    assert stored.is_file()
    again = admin.post("/rubrics", data=form(file=(io.BytesIO(data), "school-simple.yaml")),
                       content_type="multipart/form-data")
    assert again.status_code == 400 and "不能覆盖" in again.get_data(as_text=True)
    teacher = client_as(app, world.users["owner"])
    assert "本校：某校月考作文简易评分标准" in teacher.get(f"/classes/{world.classroom}/assignments/new").get_data(
        as_text=True)
    assert "本校：" not in client_as(app, world.users["outsider"]).get(
        f"/classes/{world.classroom_b}/assignments/new").get_data(as_text=True)
    teacher.post(f"/classes/{world.classroom}/assignments/new", data=form(
        title="校本作文", prompt_text="题目", genre="议论文", rubric="school:school-simple@2025.2"))
    with sessions() as session:
        created = session.scalar(select(Assignment).where(Assignment.title == "校本作文",
                                                          Assignment.classroom_id == world.classroom))
    assert created is not None and created.rubric_id == str(stored.resolve()) and created.required_length == 600
    essay_page = teacher.get(f"/assignments/{created.id}/results").get_data(as_text=True)
    assert "立意与内容" in essay_page


def test_an_invalid_rubric_is_refused_with_its_errors(app: Flask, world: World, web_data_dir: Path) -> None:
    admin = client_as(app, world.users["admin"])
    broken = (RUBRICS / "school-simple.yaml").read_text(encoding="utf-8").replace("total: 50", "total: 70")
    response = admin.post("/rubrics", data=form(file=(io.BytesIO(broken.encode()), "我的标准.yaml")),
                          content_type="multipart/form-data")
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "我的标准.yaml" in body and "不等于各维度满分之和" in body
    assert "/tmp" not in body and ".upload-" not in body
    not_yaml = admin.post("/rubrics", data=form(file=(io.BytesIO(b"a: [b"), "x.yaml")),
                          content_type="multipart/form-data")
    assert not_yaml.status_code == 400 and "YAML" in not_yaml.get_data(as_text=True)
    assert not list((web_data_dir / "rubrics" / str(world.school_a)).glob(".upload-*"))


def test_progress_page_and_json_with_workers(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    """Teachers see a current fault as one line and no detail, dead workers as 失联 for ten minutes then not at
    all; admins see every row with its detail. Each row's queue is the test's own, so other rows do not count."""
    queue, now = f"gpu-{world.tag}", utcnow()
    failing, gone, old, healthy = (f"yuejuan-{name}-{world.tag}@test" for name in ("failing", "gone", "old", "ok"))
    detail = "模型无法加载: 没有这个目录 " + "Traceback … " * 80
    with sessions() as session, session.begin():
        session.execute(update(Essay).where(Essay.id == world.flagged_essay).values(status=EssayStatus.queued))
        session.add_all([
            WorkerStatus(id=failing, queues=queue, state="failed", detail=detail, updated_at=now),
            WorkerStatus(id=gone, queues=queue, state="ready", updated_at=now - timedelta(minutes=5)),
            WorkerStatus(id=old, queues=queue, state="failed", detail="旧的故障",
                         updated_at=now - timedelta(minutes=20)),
        ])
    try:
        teacher = client_as(app, world.users["owner"])
        data = teacher.get(f"/assignments/{world.assignment}/progress.json").json
        counts = (data["total"], data["graded"], data["queued"], data["percent"], data["finished"])
        assert counts == (2, 1, 1, 50, False)
        mine = {w["id"]: w for w in data["workers"] if w["id"].endswith(f"-{world.tag}")}
        failing_name, gone_name = failing.partition("@")[0], gone.partition("@")[0]
        assert set(mine) == {failing_name, gone_name}, "a worker dead for over ten minutes is not shown to teachers"
        assert mine[failing_name]["failed"] and mine[failing_name]["state_name"] == "模型加载失败"
        assert (mine[gone_name]["state_name"], mine[gone_name]["live"], mine[gone_name]["failed"]) == \
            ("失联", False, False)
        assert "detail" not in mine[failing_name]
        assert data["worker_notice"] == FAULT_NOTICE
        page = teacher.get(f"/assignments/{world.assignment}").get_data(as_text=True)
        assert 'id="progress"' in page and FAULT_NOTICE in page and "失联" in page
        assert "没有这个目录" not in page and "Traceback" not in page and old not in page
        assert '<script src="/static/progress.js"></script>' in page

        admin = client_as(app, world.users["admin"])
        seen = {w["id"]: w for w in admin.get(f"/assignments/{world.assignment}/progress.json").json["workers"]}
        assert seen[failing]["detail"] == detail and seen[old]["state_name"] == "失联"
        assert not seen[old]["failed"], "a failure of a worker that no longer beats is not current"
        admin_page = admin.get(f"/assignments/{world.assignment}").get_data(as_text=True)
        assert FAULT_NOTICE in admin_page and "没有这个目录" in admin_page and "旧的故障" in admin_page

        # A healthy worker of the same queue took over: the old failure is no longer a fault.
        with sessions() as session, session.begin():
            session.add(WorkerStatus(id=healthy, queues=queue, state="ready", updated_at=utcnow()))
        after = {w["id"]: w for w in teacher.get(f"/assignments/{world.assignment}/progress.json").json["workers"]}
        assert not after[failing_name]["failed"] and after[healthy.partition("@")[0]]["state_name"] == "就绪"
    finally:
        with sessions() as session, session.begin():
            session.execute(WorkerStatus.__table__.delete().where(WorkerStatus.id.in_([failing, gone, old, healthy])))


def test_results_table_sorts_on_the_server(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    client.post(f"/essays/{world.flagged_essay}/override", data=form(
        score_content="20", score_expression="20", score_development="20", reason="满分"))
    page = client.get(f"/assignments/{world.assignment}/results?sort=total&dir=desc").get_data(as_text=True)
    assert page.index("李四") < page.index("张三") < page.index("王五"), "王五 has no essay: always last"
    assert "教师改分" in page and "总分 ▼" in page
    ascending = client.get(f"/assignments/{world.assignment}/results?sort=total&dir=asc").get_data(as_text=True)
    assert ascending.index("张三") < ascending.index("李四") < ascending.index("王五")
    by_dimension = client.get(f"/assignments/{world.assignment}/results?sort=dim:content&dir=asc").get_data(
        as_text=True)
    assert by_dimension.index("张三") < by_dimension.index("李四")
    assert client.get(f"/assignments/{world.assignment}/results?sort=evil';--").status_code == 200
