"""CSRF on every state-changing form, security headers, 413 with a Chinese page, no inline scripts."""

from __future__ import annotations

import io
import re
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from shared.models import Classroom, Student
from tests.factories.world import World
from tests.web.conftest import client_as, form, make_app


def _students(sessions: sessionmaker[Session], classroom_id: int) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Student).where(Student.classroom_id == classroom_id))


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["owner"])
    before = _students(sessions, world.classroom)
    missing = client.post(f"/classes/{world.classroom}/students", data={"name": "新同学"})
    wrong = client.post(f"/classes/{world.classroom}/students", data={"name": "新同学", "csrf_token": "forged"})
    for response in (missing, wrong):
        assert response.status_code == 400
        assert "安全令牌不匹配" in response.get_data(as_text=True)
    assert _students(sessions, world.classroom) == before
    ok = client.post(f"/classes/{world.classroom}/students", data=form(name="新同学"))
    assert ok.status_code == 303 and _students(sessions, world.classroom) == before + 1


def test_the_csrf_header_is_accepted_for_scripts(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    response = client.post("/classes/new", data={"name": f"新班-{world.tag}"},
                           headers={"X-CSRF-Token": form()["csrf_token"]})
    assert response.status_code == 302


def test_login_form_needs_the_token_too(app: Flask, world: World) -> None:
    response = app.test_client().post("/login", data={"username": world.usernames["owner"], "password": "x"})
    assert response.status_code == 400


def test_the_api_is_exempt_from_csrf_but_never_accepts_the_session_cookie(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    browser = client_as(app, world.users["owner"])
    assert browser.get("/api/v1/classes").status_code == 401
    cross_site = browser.post("/api/v1/classes", json={"name": f"伪造-{world.tag}"})
    assert cross_site.status_code == 401
    with_token = app.test_client().post("/api/v1/classes", json={"name": f"接口班-{world.tag}"},
                                        headers={"Authorization": f"Bearer {world.tokens['owner']}"})
    assert with_token.status_code == 201
    with sessions() as session:
        names = set(session.scalars(select(Classroom.name).where(Classroom.school_id == world.school_a)))
    assert f"接口班-{world.tag}" in names and f"伪造-{world.tag}" not in names


def test_security_headers_on_pages_and_json(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    for url in ("/classes", f"/assignments/{world.assignment}/progress.json", "/login"):
        headers = client.get(url).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_scripts_styles_or_external_resources() -> None:
    templates = Path(__file__).resolve().parents[2] / "services" / "web" / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"inline script in {path.name}"
        assert not re.search(r"\son[a-z]+=", text), f"inline event handler in {path.name}"
        assert "style=" not in text and "<style" not in text, f"inline style in {path.name}"
        assert "http://" not in text and "https://" not in text and "javascript:" not in text, path.name


def test_too_large_upload_gets_413_with_a_chinese_page(
    world: World, tmp_path: Path, pg_url: str, redis_url: str, sessions: sessionmaker[Session]
) -> None:
    small = make_app(pg_url, redis_url, tmp_path, max_upload_mb=1)
    try:
        client = client_as(small, world.users["owner"])
        big = b"x" * (1024 * 1024 + 10)
        response = client.post(f"/assignments/{world.assignment}/upload",
                               data=form(files=(io.BytesIO(big), "张三.txt")), content_type="multipart/form-data")
        assert response.status_code == 413
        body = response.get_data(as_text=True)
        assert "上传内容太大" in body and "1 MB" in body
        api = small.test_client().post(f"/api/v1/assignments/{world.assignment}/essays",
                                       data={"files": (io.BytesIO(big), "张三.txt")},
                                       headers={"Authorization": f"Bearer {world.tokens['owner']}"})
        assert api.status_code == 413 and "1 MB" in api.json["error"]
    finally:
        app_state(small).engine.dispose()
