"""备课 pages and API without a model (issue 20): what a request sends (and what the cache spares), the teacher's
edits checked, school 素材 added and refused, a goal-only 教案 kept to its author, anonymous callers turned away.
The model side is tests/integration/test_teaching.py; who may open what is tests/web/test_access_matrix.py."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

from docx import Document
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AssignmentTopic, LessonPlan, LessonPlanVersion, SchoolMaterial, TopicAnalysis
from shared.models.base import utcnow
from shared.prompts.material_library import load_library
from shared.tasks import LESSON_PLAN_TASK, MATERIAL_PICKS_TASK, TOPIC_ANGLES_TASK
from tests.factories.world import TEACHING_ANGLES, World
from tests.web.conftest import TaskRecorder, client_as, form


def _api(app: Flask, world: World, key: str, method: str, url: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {world.tokens[key]}"}
    return getattr(app.test_client(), method)(f"/api/v1{url}", headers=headers, **kwargs)


def test_every_teaching_route_turns_anonymous_callers_away(app: Flask, world: World) -> None:
    client = client_as(app, None)  # a session with the CSRF token and nobody signed in
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.split(".")[0] in ("teaching", "teaching_api")]
    assert len(rules) == 25  # 15 pages, 10 API endpoints
    for rule in rules:
        url = re.sub(r"<(?:int:)?(\w+)>", "1", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, data=form() if method == "POST" else None)
            if rule.endpoint.startswith("teaching_api."):
                assert response.status_code == 401, (method, url)
            else:
                assert response.status_code == 302 and "/login" in response.headers["Location"], (method, url)


def test_the_topic_page_shows_the_angles_and_exports_them(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    page = client.get(f"/assignments/{world.assignment}/topic").get_data(as_text=True)
    for angle in TEACHING_ANGLES:
        assert angle["thesis"] in page and angle["off_topic"] in page
    assert page.index("最稳妥") < page.index("适中") < page.index("最大胆")
    response = client.get(f"/assignments/{world.assignment}/topic.docx")
    assert response.mimetype.endswith("wordprocessingml.document")
    text = "\n".join(p.text for p in Document(io.BytesIO(response.data)).paragraphs)
    assert all(angle["thesis"] in text for angle in TEACHING_ANGLES)


def test_analysing_sends_one_task_per_prompt_and_rubric(app: Flask, world: World, tasks: TaskRecorder,
                                                        sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["owner"])
    assert client.post(f"/assignments/{world.assignment}/topic", data=form()).status_code == 303
    assert client.post(f"/assignments/{world.assignment}/topic", data=form()).status_code == 303
    # The other school's assignment has the same prompt and rubric: it shares the (queued) analysis.
    response = _api(app, world, "outsider", "post", f"/assignments/{world.assignment_b}/topic")
    assert response.status_code == 202 and response.json["status"] == "queued"
    assert tasks.names() == [TOPIC_ANGLES_TASK]
    with sessions() as session:
        mine, theirs = (session.get(AssignmentTopic, a) for a in (world.assignment, world.assignment_b))
        assert mine.analysis_id == theirs.analysis_id == tasks.sent[0][1][0]
        # Running since before the task time limit (30 min by default): its worker is gone, a request resends it.
        analysis = session.get(TopicAnalysis, mine.analysis_id)
        analysis.status, analysis.requested_at = "running", utcnow() - timedelta(seconds=1800 + 301)
        session.commit()
    assert client.post(f"/assignments/{world.assignment}/topic", data=form()).status_code == 303
    assert tasks.names() == [TOPIC_ANGLES_TASK, TOPIC_ANGLES_TASK]
    with sessions() as session:
        assert session.get(TopicAnalysis, mine.analysis_id).status == "queued"
        session.get(TopicAnalysis, mine.analysis_id).status = "done"
        session.get(TopicAnalysis, mine.analysis_id).angles = TEACHING_ANGLES
        session.commit()
    response = _api(app, world, "owner", "post", f"/assignments/{world.assignment}/topic")
    assert response.status_code == 200 and [a["thesis"] for a in response.json["angles"]] == [
        a["thesis"] for a in TEACHING_ANGLES]
    assert tasks.names() == [TOPIC_ANGLES_TASK, TOPIC_ANGLES_TASK]


def test_edited_angles_are_checked_and_kept_for_this_assignment_only(app: Flask, world: World,
                                                                     sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["owner"])
    fields = {f"{key}-0": value for key, value in {
        "thesis": "读书让人学会独立思考", "theme": "读书与思考", "keywords": "读书、思考", "relation": "回应材料",
        "off_topic": "写成读书方法"}.items()}
    client.post(f"/assignments/{world.assignment}/topic/angles", data=form(**fields))
    page = client.get(f"/assignments/{world.assignment}/topic").get_data(as_text=True)
    assert "读书让人学会独立思考" in page and "已由教师修改" in page and TEACHING_ANGLES[1]["thesis"] not in page
    bad = {**fields, "theme-0": "环保", "thesis-1": "x" * 61, "theme-1": "读书与思考"}
    response = client.post(f"/assignments/{world.assignment}/topic/angles", data=form(**bad), follow_redirects=True)
    assert "第 1 条立意的“主题”不符合要求" in response.get_data(as_text=True)
    response = _api(app, world, "owner", "post", f"/assignments/{world.assignment}/topic/angles",
                    json={"angles": [{**TEACHING_ANGLES[0], "keywords": ["只有一个"]}]})
    assert response.status_code == 400 and "关键词" in response.json["error"] and "至少 2 个" in response.json["error"]
    with sessions() as session:
        topic = session.get(AssignmentTopic, world.assignment)
        assert [a["thesis"] for a in topic.edited_angles] == ["读书让人学会独立思考"]
        assert session.get(TopicAnalysis, topic.analysis_id).angles == TEACHING_ANGLES  # the cache is untouched


def test_choosing_an_angle_asks_for_materials_among_retrieved_library_entries(
    app: Flask, world: World, tasks: TaskRecorder, sessions: sessionmaker[Session]
) -> None:
    response = _api(app, world, "owner", "post", f"/assignments/{world.assignment}/topic/choice", json={"angle": 0})
    assert response.status_code == 202 and response.json["chosen"] == 0
    materials = response.json["materials"]
    assert materials["status"] == "queued" and 1 <= len(materials["candidates"]) <= 10
    library = load_library()
    assert all(library.get(i) or i == f"school-{world.school_material}" for i in materials["candidates"])
    assert tasks.names() == [MATERIAL_PICKS_TASK]
    _api(app, world, "owner", "post", f"/assignments/{world.assignment}/topic/choice", json={"angle": 0})
    assert tasks.names() == [MATERIAL_PICKS_TASK]  # the same angle: the pick on its way is reused
    response = _api(app, world, "owner", "post", f"/assignments/{world.assignment}/topic/choice", json={"angle": 3})
    assert response.status_code == 400 and "请选择一条已生成的立意" in response.json["error"]


def test_a_school_adds_its_own_material_and_a_repeat_is_refused(app: Flask, world: World,
                                                                sessions: sessionmaker[Session]) -> None:
    admin = client_as(app, world.users["admin"])
    entry = {"kind": "quotation", "title": "校训", "text": "博学笃志，切问近思。", "origin": "《论语·子张》",
             "summary": "本校校训，出自《论语·子张》。", "source": "学校章程", "themes": ["读书与思考"]}
    response = admin.post("/admin/materials", data=form(**entry), follow_redirects=True)
    assert "已加入本校素材：校训" in response.get_data(as_text=True)
    repeat = admin.post("/admin/materials", data=form(**{**entry, "title": "校训（二）"}), follow_redirects=True)
    assert "与已有素材重复" in repeat.get_data(as_text=True) and "原文" in repeat.get_data(as_text=True)
    shipped = load_library().entries[0]
    clash = admin.post("/admin/materials", data=form(**{**entry, "title": shipped.title, "text": "另一句"}),
                       follow_redirects=True)
    assert "与已有素材重复" in clash.get_data(as_text=True)
    no_text = admin.post("/admin/materials", data=form(**{**entry, "title": "无原文", "text": ""}),
                         follow_redirects=True)
    assert "名言和诗词须填写原文" in no_text.get_data(as_text=True)
    with sessions() as session:
        titles = session.scalars(select(SchoolMaterial.title).where(SchoolMaterial.school_id == world.school_a)).all()
    assert sorted(titles) == sorted([f"本校事例-{world.tag}", "校训"])
    # Teachers of the school find it; the other school does not.
    found = _api(app, world, "owner", "get", "/materials?q=校训 博学&theme=读书与思考").json["materials"]
    assert found[0]["title"] == "校训"
    other = _api(app, world, "outsider", "get", "/materials?q=校训 博学&theme=读书与思考").json["materials"]
    assert "校训" not in [m["title"] for m in other]
    assert _api(app, world, "owner", "get", "/materials?theme=环保").status_code == 400
    page = client_as(app, world.users["owner"]).get("/materials?theme=人与自然&kind=poem").get_data(as_text=True)
    assert "山居秋暝" in page and "塞罕坝" not in page


def test_a_goal_only_lesson_plan_is_its_authors_and_a_new_version_is_checked(
    app: Flask, world: World, tasks: TaskRecorder, sessions: sessionmaker[Session]
) -> None:
    response = _api(app, world, "colleague", "post", "/lesson-plans", json={"goal": "掌握议论文对比论证"})
    assert response.status_code == 202 and response.json["facts"] == {} and response.json["status"] == "queued"
    plan_id = response.json["id"]
    assert tasks.sent == [(LESSON_PLAN_TASK, [plan_id])]
    assert _api(app, world, "colleague", "get", f"/lesson-plans/{plan_id}").status_code == 200
    assert _api(app, world, "owner", "get", f"/lesson-plans/{plan_id}").status_code == 404
    assert _api(app, world, "other_admin", "get", f"/lesson-plans/{plan_id}").status_code == 404
    assert _api(app, world, "admin", "get", f"/lesson-plans/{plan_id}").status_code == 200
    assert _api(app, world, "colleague", "post", "/lesson-plans", json={"goal": ""}).status_code == 400
    ungraded = _api(app, world, "outsider", "post", "/lesson-plans", json={"assignment_id": world.assignment_b})
    assert ungraded.status_code == 400 and "还没有评完的作文" in ungraded.json["error"]
    # The world's plan of the assignment: a form edit becomes version 2; a bad line is refused by number.
    owner = client_as(app, world.users["owner"])
    fields = {"objectives": "掌握对比论证\n能修改病句", "key_points": "对比论证", "difficulties": "论据与论点挂钩",
              "steps": "导入｜5｜展示病例\n讲授｜20｜对比分析\n练习｜15｜修改病句", "activities": "小组互评",
              "examples": "眼晴｜眼睛｜错别字", "homework": "改写第二段"}
    response = owner.post(f"/lesson-plans/{world.lesson_plan}", data=form(**fields), follow_redirects=True)
    assert "已保存为第 2 版" in response.get_data(as_text=True)
    bad = owner.post(f"/lesson-plans/{world.lesson_plan}", data=form(**{**fields, "steps": "导入｜五分钟｜展示"}),
                     follow_redirects=True)
    assert "教学过程第 1 行" in bad.get_data(as_text=True)
    with sessions() as session:
        versions = session.scalars(select(LessonPlanVersion).where(LessonPlanVersion.plan_id == world.lesson_plan)
                                   .order_by(LessonPlanVersion.version)).all()
        assert [(v.version, v.source) for v in versions] == [(1, "model"), (2, "teacher")]
        assert versions[1].content["steps"][1] == {"name": "讲授", "minutes": 20, "activity": "对比分析"}
        session.delete(session.get(LessonPlan, plan_id))
        session.commit()
    old = owner.get(f"/lesson-plans/{world.lesson_plan}/plan.docx?version=1")
    new = owner.get(f"/lesson-plans/{world.lesson_plan}/plan.docx")
    assert "第 1 版" in "\n".join(p.text for p in Document(io.BytesIO(old.data)).paragraphs)
    assert "改写第二段" in "\n".join(p.text for p in Document(io.BytesIO(new.data)).paragraphs)
    assert owner.get(f"/lesson-plans/{world.lesson_plan}/plan.docx?version=9").status_code == 404
    api = _api(app, world, "owner", "get", f"/lesson-plans/{world.lesson_plan}/docx?version=2")
    assert api.mimetype.endswith("wordprocessingml.document")
    assert "改写第二段" in "\n".join(p.text for p in Document(io.BytesIO(api.data)).paragraphs)
