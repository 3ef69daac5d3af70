"""Odd input never answers 500: Unicode digits, ids past 2^63, JSON nested past the parser's depth, control
characters in next= and in names that reach a Content-Disposition header; and the open redirect after login."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Assignment, Classroom, LoginThrottle
from tests.factories.world import World
from tests.web.conftest import CSRF, PASSWORD, client_as, form

HUGE = str(2**64)  # past BIGINT: PostgreSQL refused it with an out-of-range error (a 500 before)
UNICODE_DIGITS = ("²", "¹", "١٢", "１２")


@pytest.fixture()
def _clean_throttle(world: World, sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    yield
    with sessions() as session, session.begin():
        session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == world.usernames["owner"].casefold()))


@pytest.mark.parametrize("next_url", [
    "/\t/evil.example/x", "/\n/evil.example/x", "/\r\n/evil.example", "//evil.example/x", "/\\evil.example",
    "https://evil.example/", "/ /evil.example", "/\u3000/evil.example", "javascript:alert(1)",
])
@pytest.mark.usefixtures("_clean_throttle")
def test_login_never_redirects_off_site_and_a_newline_is_no_500(app: Flask, world: World, next_url: str) -> None:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    page = client.get("/login", query_string={"next": next_url})
    assert page.status_code == 200
    response = client.post("/login", data=form(username=world.usernames["owner"], password=PASSWORD, next=next_url))
    assert response.status_code == 302 and response.headers["Location"] == "/classes"


@pytest.mark.usefixtures("_clean_throttle")
def test_login_keeps_a_local_next(app: Flask, world: World) -> None:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    target = f"/assignments/{world.assignment}/results?sort=total"
    response = client.post("/login", data=form(username=world.usernames["owner"], password=PASSWORD, next=target))
    assert response.headers["Location"] == target


@pytest.mark.parametrize("digits", UNICODE_DIGITS)
def test_unicode_digits_in_numeric_fields_are_a_clear_400(app: Flask, world: World, digits: str) -> None:
    owner = client_as(app, world.users["owner"])
    override = owner.post(f"/essays/{world.essay}/override", data=form(
        score_content=digits, score_expression="10", score_development="10", reason="复核"))
    assert override.status_code == 400 and "的分数必须是 0 到" in override.get_data(as_text=True)
    assignment = owner.post(f"/classes/{world.classroom}/assignments/new", data=form(
        title="期末作文", prompt_text="以“家”为题。", required_length=digits))
    assert assignment.status_code == 400 and "字数要求必须是" in assignment.get_data(as_text=True)
    admin = client_as(app, world.users["admin"])
    new_class = admin.post("/classes/new", data=form(name=f"新班-{digits}", teacher_id=digits))
    assert new_class.status_code == 400 and "所选教师不存在" in new_class.get_data(as_text=True)
    assert admin.get("/admin/audit", query_string={"page": digits, "object_id": digits}).status_code == 200
    assert admin.post("/admin/reports", data=form(school_id=digits)).status_code in (302, 303)
    sysadmin = client_as(app, world.users["sysadmin"])
    assert sysadmin.get("/rubrics", query_string={"school_id": digits}).status_code == 200
    api = app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    assert api.get("/api/v1/rubrics", query_string={"classroom_id": digits}, headers=headers).status_code == 200
    scores = api.post(f"/api/v1/essays/{world.essay}/override", headers=headers,
                      json={"scores": {"content": digits, "expression": 10, "development": 10}, "reason": "x"})
    assert scores.status_code == 400


def test_ids_past_bigint_are_404_or_400_never_500(app: Flask, world: World) -> None:
    owner = client_as(app, world.users["owner"])
    big = str(2**63 - 1)  # past INTEGER, the type of every id column
    for path in (f"/classes/{HUGE}", f"/assignments/{HUGE}", f"/essays/{HUGE}", f"/reports/{HUGE}/download",
                 f"/classes/{world.classroom}/students/{HUGE}/delete", f"/essays/{big}", f"/reports/{big}/download",
                 f"/classes/{world.classroom}/students/{big}/delete"):
        method = "POST" if path.endswith("delete") else "GET"
        response = owner.open(path, method=method, data=form() if method == "POST" else None)
        assert response.status_code == 404, (path, response.status_code)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    for path in (f"/api/v1/essays/{HUGE}", f"/api/v1/classes/{HUGE}", f"/api/v1/assignments/{HUGE}/progress"):
        assert api.get(path, headers=headers).status_code == 404, path
    assert api.get("/api/v1/rubrics", query_string={"classroom_id": HUGE}, headers=headers).status_code == 200
    created = api.post("/api/v1/classes", headers=headers, json={"name": "大数班", "teacher_id": 2**70})
    assert created.status_code == 400
    admin = client_as(app, world.users["admin"])
    assert admin.post("/classes/new", data=form(name="大数班", teacher_id=HUGE)).status_code == 400
    assert admin.get("/admin/audit", query_string={"object_id": HUGE, "page": HUGE}).status_code == 200
    assert admin.get("/admin/audit", query_string={"object_id": big, "page": big}).status_code == 200
    assert admin.post("/admin/reports", data=form(school_id=HUGE)).status_code in (302, 303)
    assert admin.post(f"/admin/users/{HUGE}/disable", data=form()).status_code == 404
    sysadmin = client_as(app, world.users["sysadmin"])
    assert sysadmin.get("/rubrics", query_string={"school_id": HUGE}).status_code == 200
    assert sysadmin.post("/admin/users", data=form(username=f"big-{world.tag}", password="a-long-enough-pass",
                                                   school_id=HUGE)).status_code == 400


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000, '{"name": ' + "[" * 5000 + "]" * 5000 + "}"])
def test_deeply_nested_json_is_a_400(app: Flask, world: World, body: str) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['owner']}", "Content-Type": "application/json"}
    response = app.test_client().post("/api/v1/classes", data=body, headers=headers)
    assert response.status_code == 400 and response.json["status"] == 400


@pytest.mark.parametrize("bad", ["期中\n作文", "期中\r\nSet-Cookie: x=1", "作文\x07\x1b[31m", "作文\u2028二",
                                 "a/b\\c\"d"])
def test_control_characters_in_names_do_not_break_the_workbook_download(
    app: Flask, world: World, sessions: sessionmaker[Session], bad: str
) -> None:
    with sessions() as session, session.begin():
        session.get(Assignment, world.assignment).title = bad
        session.get(Classroom, world.classroom).name = f"高三\n{bad}-{world.tag}"
    owner = client_as(app, world.users["owner"])
    response = owner.get(f"/reports/{world.class_report}/download")
    assert response.status_code == 200 and response.data == b"PK fake class workbook"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and not any(ord(ch) < 32 for ch in disposition)
    assert "Set-Cookie" not in response.headers or "x=1" not in response.headers.get("Set-Cookie", "")
    assert "%E9%AB%98%E4%B8%89" in disposition  # 高三, the class name still names the file


def test_a_nul_character_in_a_form_query_or_json_is_a_400(app: Flask, world: World) -> None:
    admin = client_as(app, world.users["admin"])
    page = admin.post("/classes/new", data=form(name="高三\x00班"))
    assert page.status_code == 400 and "NUL" in page.get_data(as_text=True)
    assert admin.get("/admin/audit", query_string={"actor": "a\x00b"}).status_code == 400
    assert app.test_client().get("/login", query_string={"next": "/\x00/x"}).status_code == 400
    api = app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    assert api.post("/api/v1/classes", headers=headers, json={"name": "高三\x00班"}).status_code == 400
