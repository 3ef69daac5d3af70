"""Small things a new teacher tripped over: the preview's list of students still without an essay, the audit page's
action names, rubric upload errors in Chinese, and reading and downloading the built-in rubric."""

from __future__ import annotations

import io
import re
from pathlib import Path

import yaml
from flask import Flask

from services.web.audit_labels import ACTION_LABELS
from shared.prompts.rubric import load_rubric
from tests.factories.world import ESSAY_TEXT, World, essay_zip
from tests.web.conftest import client_as, form

REPO = Path(__file__).resolve().parents[2]
RUBRICS = REPO / "tests" / "data" / "rubrics"
MISSING = "名单中还没有作文的学生"


def _preview(app: Flask, world: World, files: dict[str, str]) -> str:
    client = client_as(app, world.users["owner"])
    response = client.post(f"/assignments/{world.assignment}/upload", data=form(
        files=[(io.BytesIO(essay_zip(files)), "作文.zip")]), content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[-1000:]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_preview_lists_only_students_with_no_essay_at_all(app: Flask, world: World) -> None:
    # 张三 and 李四 already have essays in the assignment; 王五 has none.
    assert MISSING not in _preview(app, world, {"王五.txt": ESSAY_TEXT})
    page = _preview(app, world, {"张三.txt": ESSAY_TEXT})
    line = re.search(rf"{MISSING}（(\d+)）：([^<]*)</p>", page)
    assert line is not None and line.groups() == ("1", "王五（003）")
    api = app.test_client().post(f"/api/v1/assignments/{world.assignment}/essays",
                                 headers={"Authorization": f"Bearer {world.tokens['owner']}"},
                                 data={"files": (io.BytesIO(essay_zip({"张三.txt": ESSAY_TEXT})), "a.zip")})
    assert api.json["missing"] == ["王五（003）"]


def _recorded_actions() -> set[str]:
    """Every audit action the code records: literal first arguments of record/entry and the *_ACTION constants."""
    calls = re.compile(r'(?:record|entry)\(\s*(?:session,\s*|db\(\),\s*)?"([a-z_]+\.[a-z_]+)"')
    constants = re.compile(r'^(?:[A-Z_]*_ACTION|LOGIN_[A-Z_]+) = "([a-z_]+\.[a-z_]+)"', re.M)
    keywords = re.compile(r'action="([a-z_]+\.[a-z_]+)"')
    found: set[str] = set()
    for path in [*(REPO / "services").rglob("*.py"), *(REPO / "shared").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for pattern in (calls, constants, keywords):
            found.update(pattern.findall(text))
    return found


def test_every_recorded_audit_action_has_a_chinese_label() -> None:
    actions = _recorded_actions()
    assert {"essay.view", "model.grade", "report.download", "auth.login_success"} <= actions
    unlabelled = sorted(actions - set(ACTION_LABELS))
    assert not unlabelled, f"add a Chinese label to ACTION_LABELS in services/web/audit_labels.py: {unlabelled}"


def test_the_audit_page_shows_action_names_not_codes(app: Flask, world: World) -> None:
    client_as(app, world.users["owner"]).get(f"/essays/{world.essay}")
    page = client_as(app, world.users["admin"]).get(f"/admin/audit?object_id={world.essay}").get_data(as_text=True)
    assert '<td title="essay.view">查看作文</td>' in page and f"作文 #{world.essay}" in page
    assert "<code>essay.view</code>" not in page and "（时间为北京时间）" in page


def test_rubric_upload_errors_are_chinese_and_name_the_place(app: Flask, world: World) -> None:
    data = yaml.safe_load((RUBRICS / "school-simple.yaml").read_text(encoding="utf-8"))
    del data["name"]
    data["dimensions"][1].pop("max")
    data["totl"] = 50
    response = client_as(app, world.users["admin"]).post(
        "/rubrics", data=form(file=(io.BytesIO(yaml.safe_dump(data, allow_unicode=True).encode()), "校本.yaml")),
        content_type="multipart/form-data")
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "校本.yaml" in body
    assert "name：缺少这一项（必填）" in body and "dimensions[2].max：缺少这一项（必填）" in body
    assert "totl：不认识的字段" in body
    assert "Field required" not in body and "Extra inputs" not in body


def test_the_built_in_rubric_can_be_read_and_downloaded(app: Flask, world: World) -> None:
    teacher = client_as(app, world.users["owner"])
    index = teacher.get("/rubrics").get_data(as_text=True)
    assert 'href="/rubrics/gaokao-national@2024.1"' in index
    page = teacher.get("/rubrics/gaokao-national@2024.1")
    text = page.get_data(as_text=True)
    rubric = load_rubric("gaokao-national", "2024.1")
    assert page.status_code == 200 and rubric.name in text
    for dim in rubric.dimensions:
        assert f"{dim.name}（{dim.max} 分）" in text
        assert f"{dim.bands[0].min}–{dim.bands[0].max}" in text and dim.bands[0].descriptors[0] in text
    download = teacher.get("/rubrics/gaokao-national@2024.1/download")
    assert download.status_code == 200 and "gaokao-national@2024.1.yaml" in download.headers["Content-Disposition"]
    assert yaml.safe_load(download.data)["id"] == "gaokao-national"
    assert teacher.get("/rubrics/nope@1/download").status_code == 404
    assert client_as(app, None).get("/rubrics/gaokao-national@2024.1").status_code in (302, 303)


def test_a_schools_own_rubric_is_read_only_by_that_school(app: Flask, world: World) -> None:
    admin = client_as(app, world.users["admin"])
    upload = admin.post("/rubrics", data=form(file=(io.BytesIO((RUBRICS / "school-simple.yaml").read_bytes()),
                                                    "school-simple.yaml")), content_type="multipart/form-data")
    assert upload.status_code == 303
    key = "school:school-simple@2025.2"
    colleague = client_as(app, world.users["colleague"])
    assert colleague.get(f"/rubrics/{key}").status_code == 200
    assert b"school-simple" in colleague.get(f"/rubrics/{key}/download").data
    assert client_as(app, world.users["outsider"]).get(f"/rubrics/{key}").status_code == 404
    assert client_as(app, world.users["outsider"]).get(f"/rubrics/{key}/download").status_code == 404
