"""The audit page: admins only, a school admin sees their own school's rows, filters and pagination."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from shared import audit
from tests.factories.world import World
from tests.web.conftest import client_as


def test_school_admin_sees_own_school_rows_including_model_calls(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session, session.begin():
        audit.record(session, "model.grade", actor="worker", object_type="essay", object_id=world.essay,
                     grade_version=1, model=f"model-{world.tag}")
        audit.record(session, "essay.view", actor=world.usernames["outsider"], actor_id=world.users["outsider"],
                     object_type="essay", object_id=999999, note=f"other-{world.tag}")
    client_as(app, world.users["owner"]).get(f"/essays/{world.essay}")
    admin = client_as(app, world.users["admin"])
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert f"model-{world.tag}" in page and world.usernames["owner"] in page
    assert f"other-{world.tag}" not in page
    other = client_as(app, world.users["other_admin"]).get("/admin/audit").get_data(as_text=True)
    assert f"other-{world.tag}" in other and f"model-{world.tag}" not in other
    sysadmin = client_as(app, world.users["sysadmin"]).get("/admin/audit").get_data(as_text=True)
    assert f"other-{world.tag}" in sysadmin and f"model-{world.tag}" in sysadmin


def test_filters_and_pagination(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        for index in range(60):
            audit.record(session, "essay.view", actor=world.usernames["owner"], actor_id=world.users["owner"],
                         object_type="essay", object_id=world.essay, n=index)
        audit.record(session, "grade.override", actor=world.usernames["owner"], actor_id=world.users["owner"],
                     object_type="essay", object_id=world.essay, marker=f"ov-{world.tag}")
    admin = client_as(app, world.users["admin"])
    first = admin.get(f"/admin/audit?actor={world.usernames['owner']}&action=essay.view").get_data(as_text=True)
    assert "共 60 条" in first and "第 1 / 2 页" in first and "下一页" in first and f"ov-{world.tag}" not in first
    second = admin.get(f"/admin/audit?actor={world.usernames['owner']}&action=essay.view&page=2").get_data(
        as_text=True)
    assert "第 2 / 2 页" in second and "上一页" in second
    override = admin.get(f"/admin/audit?action=grade.override&object_type=essay&object_id={world.essay}")
    assert f"ov-{world.tag}" in override.get_data(as_text=True)
    dated = admin.get(f"/admin/audit?actor={world.usernames['owner']}&until=2000-01-01").get_data(as_text=True)
    assert "共 0 条" in dated
    assert admin.get("/admin/audit?since=not-a-date&page=abc").status_code == 200


def test_teachers_cannot_open_the_audit_page(app: Flask, world: World) -> None:
    assert client_as(app, world.users["owner"]).get("/admin/audit").status_code == 403
