"""The JSON API: bearer tokens, the whole flow from class to override, and an OpenAPI document for every route."""

from __future__ import annotations

import io
import re
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, Essay, EssayStatus, Grade
from tests.factories.world import ESSAY_TEXT, World, essay_zip
from tests.web.conftest import TaskRecorder


class Api:
    def __init__(self, app: Flask, token: str) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, url: str) -> Any:
        return self.client.get(f"/api/v1{url}", headers=self.headers)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(f"/api/v1{url}", headers=self.headers, **kwargs)


def test_missing_or_bad_tokens_are_401(app: Flask, world: World) -> None:
    client = app.test_client()
    assert client.get("/api/v1/classes").status_code == 401
    response = client.get("/api/v1/classes", headers={"Authorization": "Bearer yj_wrong"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "令牌" in response.json["error"]
    assert client.get("/api/v1/classes", headers={"Authorization": f"Basic {world.tokens['owner']}"}).status_code == 401


def test_the_whole_flow_through_the_api(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    api = Api(app, world.tokens["colleague"])
    created = api.post("/classes", json={"name": f"接口班-{world.tag}"})
    assert created.status_code == 201
    classroom_id = created.json["id"]
    assert [c["id"] for c in api.get("/classes").json["classes"]] == [classroom_id]
    roster = api.post(f"/classes/{classroom_id}/roster",
                      data={"file": (io.BytesIO("姓名,学号\n甲同学,101\n乙同学,102\n".encode()), "名单.csv")})
    assert roster.status_code == 200 and len(roster.json["added"]) == 2
    rubrics = api.get(f"/rubrics?classroom_id={classroom_id}").json["rubrics"]
    assignment = api.post(f"/classes/{classroom_id}/assignments", json={
        "title": "接口作文", "prompt_text": "题目", "rubric": rubrics[0]["key"], "required_length": 700})
    assert assignment.status_code == 201 and assignment.json["required_length"] == 700
    assignment_id = assignment.json["id"]
    assert api.post(f"/classes/{classroom_id}/assignments", json={"title": ""}).status_code == 400

    upload = essay_zip({"甲同学.txt": ESSAY_TEXT, "乙同学.txt": ESSAY_TEXT})
    preview = api.post(f"/assignments/{assignment_id}/essays", data={"files": (io.BytesIO(upload), "a.zip")})
    assert preview.status_code == 200 and preview.json["ok"] and len(preview.json["items"]) == 2
    confirmed = api.post(f"/uploads/{preview.json['token']}/confirm")
    assert confirmed.status_code == 201 and len(confirmed.json["essay_ids"]) == 2 and confirmed.json["queued"]
    assert tasks.names() == ["grading.grade_batch"]
    assert api.post(f"/uploads/{preview.json['token']}/confirm").status_code == 404

    progress = api.get(f"/assignments/{assignment_id}/progress").json
    assert (progress["total"], progress["queued"], progress["percent"]) == (2, 2, 0)
    essay_id = confirmed.json["essay_ids"][0]
    # Pretend the worker graded it, then override through the API.
    with sessions() as session, session.begin():
        session.get(Essay, essay_id).status = EssayStatus.graded
    override = api.post(f"/essays/{essay_id}/override", json={
        "scores": {"content": 12, "expression": 11, "development": 9}, "comment": "接口改分", "reason": "复核"})
    assert override.status_code == 201 and override.json["grade"]["version"] == 1
    assert override.json["grade"]["source"] == "teacher" and override.json["grade"]["total"] == 32
    detail = api.get(f"/essays/{essay_id}").json
    assert detail["grade"]["comment"] == "接口改分" and detail["text"].startswith("读书的意义")
    results = api.get(f"/assignments/{assignment_id}/results?sort=total&dir=desc").json
    assert results["rows"][0]["total"] == 32 and [d["key"] for d in results["dimensions"]] == [
        "content", "expression", "development"]
    with sessions() as session:
        assert session.scalar(select(AuditLog.id).where(AuditLog.action == "essay.view",
                                                        AuditLog.object_id == essay_id)) is not None
    bad = api.post(f"/essays/{essay_id}/override", json={"scores": {"content": 99}, "reason": "x"})
    assert bad.status_code == 400


def test_upload_with_confirm_in_one_call_and_refusal_when_there_are_problems(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    api = Api(app, world.tokens["owner"])
    bad = api.post(f"/assignments/{world.assignment}/essays?confirm=1",
                   data={"files": (io.BytesIO(essay_zip({"王五.txt": ESSAY_TEXT, "无名氏.txt": ESSAY_TEXT})), "x.zip")})
    assert bad.status_code == 422 and bad.json["token"] is None and bad.json["problems"]
    with sessions() as session:
        assert len(session.scalars(select(Essay).where(Essay.assignment_id == world.assignment)).all()) == 2
    assert tasks.sent == []
    good = api.post(f"/assignments/{world.assignment}/essays?confirm=1",
                    data={"files": (io.BytesIO(ESSAY_TEXT.encode()), "王五.txt")})
    assert good.status_code == 201 and good.json["confirmed"]
    clash = api.post(f"/assignments/{world.assignment}/essays?confirm=1",
                     data={"files": (io.BytesIO(ESSAY_TEXT.encode()), "王五.txt")})
    assert clash.status_code == 409 and "已有作文" in clash.json["error"]
    replaced = api.post(f"/assignments/{world.assignment}/essays?confirm=1&replace=1",
                        data={"files": (io.BytesIO(ESSAY_TEXT.encode()), "王五.txt")})
    assert replaced.status_code == 201
    rejected = api.post(f"/assignments/{world.assignment}/essays", data={"files": (io.BytesIO(b"PK\x03\x04"), "a.zip")})
    assert rejected.status_code == 400 and "a.zip" in rejected.json["error"]


def test_regrade_through_the_api(app: Flask, world: World, sessions: sessionmaker[Session],
                                 tasks: TaskRecorder) -> None:
    api = Api(app, world.tokens["admin"])
    assert api.post(f"/essays/{world.essay}/regrade").status_code == 202
    assert api.post(f"/essays/{world.essay}/regrade").status_code == 409
    assert tasks.sent == [("grading.grade_batch", [[world.essay]])]
    with sessions() as session:
        assert len(session.scalars(select(Grade).where(Grade.essay_id == world.essay)).all()) == 1


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule).removeprefix("/api/v1")


def test_openapi_document_describes_every_api_route(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.") and document["components"]["securitySchemes"]["bearer"]
    routes = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == described
    schemas = set(document["components"]["schemas"])
    references = set(re.findall(r"#/components/schemas/(\w+)", str(document)))
    assert references <= schemas
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path
