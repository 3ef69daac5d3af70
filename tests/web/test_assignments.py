"""Assignments with shipped or school rubrics, the progress page and JSON, the sortable results table."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Assignment, Essay, EssayStatus, WorkerStatus
from tests.web.conftest import client_as, form
from tests.web.world import World

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
    worker_id = f"yuejuan-gpu-{world.tag}@test"
    with sessions() as session, session.begin():
        session.execute(update(Essay).where(Essay.id == world.flagged_essay).values(status=EssayStatus.queued))
        session.add(WorkerStatus(id=worker_id, queues="gpu", state="failed", detail="模型无法加载: 没有这个目录"))
    try:
        client = client_as(app, world.users["owner"])
        data = client.get(f"/assignments/{world.assignment}/progress.json").json
        counts = (data["total"], data["graded"], data["queued"], data["percent"], data["finished"])
        assert counts == (2, 1, 1, 50, False)
        mine = [w for w in data["workers"] if w["id"] == worker_id]
        assert mine and mine[0]["failed"] and mine[0]["state_name"] == "模型加载失败"
        page = client.get(f"/assignments/{world.assignment}").get_data(as_text=True)
        assert 'id="progress"' in page and "评分进程无法工作" in page and "没有这个目录" in page
        assert '<script src="/static/progress.js"></script>' in page
    finally:
        with sessions() as session, session.begin():
            session.execute(WorkerStatus.__table__.delete().where(WorkerStatus.id == worker_id))


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
