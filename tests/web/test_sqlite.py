"""The embedded mode's database: the main page flows on SQLite (naive datetimes, RETURNING, window functions)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from services.web.state import app_state
from tests.factories.world import ESSAY_TEXT, World, build_world, essay_zip
from tests.web.conftest import CSRF, PASSWORD, client_as, form, make_app


@pytest.fixture()
def sqlite_app(sqlite_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    application = make_app(sqlite_url, redis_url, tmp_path / "data")
    yield application
    app_state(application).engine.dispose()


@pytest.fixture()
def sqlite_world(sqlite_app: Flask, password_hash: str, tmp_path: Path) -> World:
    return build_world(app_state(sqlite_app).sessions, password_hash, tmp_path / "data")


def test_upload_confirm_override_results_and_audit_on_sqlite(sqlite_app: Flask, sqlite_world: World) -> None:
    world = sqlite_world
    client = client_as(sqlite_app, world.users["owner"])
    upload = client.post(f"/assignments/{world.assignment}/upload",
                         data=form(files=(io.BytesIO(essay_zip({"王五.txt": ESSAY_TEXT})), "a.zip")),
                         content_type="multipart/form-data")
    token = upload.headers["Location"].rsplit("/", 1)[1]
    assert client.post(f"/uploads/{token}/confirm", data=form()).status_code == 303
    assert client.get(f"/assignments/{world.assignment}/progress.json").json["total"] == 3
    assert client.post(f"/essays/{world.essay}/override", data=form(
        score_content="16", score_expression="16", score_development="16", reason="复核")).status_code == 303
    results = client.get(f"/assignments/{world.assignment}/results?sort=total&dir=desc").get_data(as_text=True)
    assert results.index("张三") < results.index("李四")
    assert "第 2 版（教师）" in client.get(f"/essays/{world.essay}").get_data(as_text=True)
    audit = client_as(sqlite_app, world.users["admin"]).get("/admin/audit?action=grade.override")
    assert "grade.override" in audit.get_data(as_text=True)


def test_login_rate_limit_on_sqlite(sqlite_app: Flask, sqlite_world: World) -> None:
    client = sqlite_app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    username = sqlite_world.usernames["owner"]
    assert client.post("/login", data=form(username=username, password=PASSWORD)).status_code == 302
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    for _ in range(5):
        assert client.post("/login", data=form(username=username, password="bad-password")).status_code == 401
    assert client.post("/login", data=form(username=username, password=PASSWORD)).status_code == 429
