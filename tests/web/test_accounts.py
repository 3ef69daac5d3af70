"""Accounts: sessions that end server-side (cookie replayed after logout, password change, reset, role change,
deactivation), the password-change page, admin account pages, case-insensitive usernames, expiring tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, LoginThrottle, Role, School, User
from shared.models.base import utcnow
from shared.security import hash_api_token, verify_password
from tests.factories.world import World
from tests.web.conftest import CSRF, PASSWORD, client_as, form

COOKIE = "yuejuan_session"
NEW_PASSWORD = "autumn-leaves-fall-2026"


def _fresh(app: Flask) -> FlaskClient:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    return client


def _signed_in(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    """A client that signed in through the login form, with the CSRF token the tests post (as a page would)."""
    client = _fresh(app)
    response = client.post("/login", data=form(username=username, password=password))
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    return client


def _replay(app: Flask, source: FlaskClient) -> FlaskClient:
    """A second browser holding a saved copy of ``source``'s session cookie."""
    saved = source.get_cookie(COOKIE)
    assert saved is not None
    copy = app.test_client()
    copy.set_cookie(COOKIE, saved.value)
    return copy


def _signed_out(client: FlaskClient) -> bool:
    response = client.get("/classes")
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.fixture(autouse=True)
def _no_throttle_left(world: World, sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    yield
    with sessions() as session, session.begin():
        keys = [name.casefold() for name in world.usernames.values()] + [f"new-{world.tag}", f"sa-{world.tag}"]
        session.execute(delete(LoginThrottle).where(LoginThrottle.username_key.in_(keys)))


def test_a_cookie_saved_before_logout_no_longer_works(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    browser = _signed_in(app, world.usernames["owner"])
    saved = _replay(app, browser)
    other_device = _signed_in(app, world.usernames["owner"])
    assert not _signed_out(saved) and saved.get(f"/essays/{world.essay}").status_code == 200
    assert browser.post("/logout", data=form()).status_code == 302
    assert _signed_out(saved), "the replayed cookie still works after logout"
    assert saved.get(f"/essays/{world.essay}").status_code == 302
    assert _signed_out(other_device), "logout ends every session of the account"
    with sessions() as session:
        assert session.get(User, world.users["owner"]).session_version == 1
    # Signing in again works and gives a new session.
    assert not _signed_out(_signed_in(app, world.usernames["owner"]))


def test_changing_the_own_password(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    username = world.usernames["colleague"]
    browser = _signed_in(app, username)
    other = _signed_in(app, username)
    page = browser.get("/account/password")
    assert page.status_code == 200 and "修改密码" in page.get_data(as_text=True)
    cases = [
        ({"current_password": "not-my-password", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
         "当前密码不正确"),
        ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "x"},
         "两次输入的新密码不一致"),
        ({"current_password": PASSWORD, "new_password": "password", "confirm_password": "password"}, "太常见"),
        ({"current_password": PASSWORD, "new_password": f"{username}-2026", "confirm_password": f"{username}-2026"},
         "不能包含用户名"),
    ]
    for fields, message in cases:
        refused = browser.post("/account/password", data=form(**fields))
        assert refused.status_code == 400 and message in refused.get_data(as_text=True), message
    assert not _signed_out(other), "a refused change ends nothing"
    done = browser.post("/account/password", data=form(current_password=PASSWORD, new_password=NEW_PASSWORD,
                                                       confirm_password=NEW_PASSWORD))
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert not _signed_out(browser), "the session that changed the password continues"
    assert _signed_out(other), "every other session ends"
    old = _fresh(app).post("/login", data=form(username=username, password=PASSWORD))
    assert old.status_code == 401
    assert not _signed_out(_signed_in(app, username, NEW_PASSWORD))
    with sessions() as session:
        actions = session.scalars(select(AuditLog.action).where(AuditLog.actor_id == world.users["colleague"],
                                                                AuditLog.action.like("user.password%"))).all()
    assert actions.count("user.password_change_refused") == 4 and actions.count("user.password_changed") == 1


def test_school_admin_creates_disables_enables_and_resets_a_teacher(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    admin = client_as(app, world.users["admin"])
    page = admin.get("/admin/users").get_data(as_text=True)
    assert world.usernames["owner"] in page and world.usernames["outsider"] not in page
    assert world.usernames["admin"] not in page.split('id="users"')[1], "an admin does not manage their own account"
    username = f"New-{world.tag}"
    created = admin.post("/admin/users", data=form(username=f"  {username} ", display_name="孙老师",
                                                    password=NEW_PASSWORD, role="teacher"))
    assert created.status_code == 302
    with sessions() as session:
        account = session.scalar(select(User).where(User.username_key == username.casefold()))
        assert account is not None
        assert (account.username, account.role, account.school_id) == (username, Role.teacher, world.school_a)
        new_id = account.id
        assert session.scalar(select(AuditLog.action).where(AuditLog.object_id == new_id,
                                                            AuditLog.object_type == "user")) == "user.create"
    # Case and trailing-space twins are refused.
    for twin in (username.upper(), f"{username.lower()} "):
        twin_page = admin.post("/admin/users", data=form(username=twin, display_name="x", password=NEW_PASSWORD))
        assert twin_page.status_code == 400 and "已被使用" in twin_page.get_data(as_text=True)
    weak = admin.post("/admin/users", data=form(username=f"weak-{world.tag}", password="12345678"))
    assert weak.status_code == 400 and "太常见" in weak.get_data(as_text=True)
    # A school admin cannot create a school admin, nor a teacher of another school.
    assert admin.post("/admin/users", data=form(username=f"sa-{world.tag}", password=NEW_PASSWORD,
                                                role="school_admin")).status_code == 400
    admin.post("/admin/users", data=form(username=f"elsewhere-{world.tag}", password=NEW_PASSWORD,
                                         school_id=str(world.school_b)))
    with sessions() as session:
        assert session.scalar(select(User.school_id).where(User.username == f"elsewhere-{world.tag}")) == \
            world.school_a
        assert session.scalar(select(User).where(User.username == f"sa-{world.tag}")) is None

    # The new teacher signs in with any case of the username.
    teacher = _signed_in(app, username.upper(), NEW_PASSWORD)
    saved = _replay(app, teacher)
    assert admin.post(f"/admin/users/{new_id}/disable", data=form()).status_code == 302
    assert _signed_out(teacher) and _signed_out(saved)
    assert _fresh(app).post("/login", data=form(username=username, password=NEW_PASSWORD)).status_code == 401
    assert admin.post(f"/admin/users/{new_id}/enable", data=form()).status_code == 302
    teacher = _signed_in(app, username, NEW_PASSWORD)

    short = admin.post(f"/admin/users/{new_id}/password", data=form(password="short"))
    assert short.status_code == 400 and "至少 10 个字符" in short.get_data(as_text=True)
    assert admin.post(f"/admin/users/{new_id}/password", data=form(password="reset-by-admin-2026")).status_code == 302
    assert _signed_out(teacher), "a reset ends the teacher's sessions"
    assert _fresh(app).post("/login", data=form(username=username, password=NEW_PASSWORD)).status_code == 401
    _signed_in(app, username, "reset-by-admin-2026")
    with sessions() as session:
        actions = session.scalars(select(AuditLog.action).where(AuditLog.object_type == "user",
                                                                AuditLog.object_id == new_id)
                                  .order_by(AuditLog.id)).all()
    assert [a for a in actions if a.startswith("user.") and a != "user.password_change_refused"] == [
        "user.create", "user.disable", "user.enable", "user.password_reset"]


def test_disabling_revokes_the_api_token(app: Flask, world: World) -> None:
    admin = client_as(app, world.users["admin"])
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 200
    admin.post(f"/admin/users/{world.users['owner']}/disable", data=form())
    admin.post(f"/admin/users/{world.users['owner']}/enable", data=form())
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 401


def test_sysadmin_creates_a_school_and_its_admin_and_changes_roles(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    sysadmin = client_as(app, world.users["sysadmin"])
    school_name = f"第三中学-{world.tag}"
    assert sysadmin.post("/admin/schools", data=form(name=school_name)).status_code == 302
    assert school_name in sysadmin.get("/admin/schools").get_data(as_text=True)
    again = sysadmin.post("/admin/schools", data=form(name=school_name))
    assert again.status_code == 400 and "已存在" in again.get_data(as_text=True)
    assert sysadmin.post("/admin/schools", data=form(name="坏\n名字")).status_code == 400
    with sessions() as session:
        school_id = session.scalar(select(School.id).where(School.name == school_name))
    try:
        username = f"sa-{world.tag}"
        created = sysadmin.post("/admin/users", data=form(username=username, display_name="三中教务",
                                                          password=NEW_PASSWORD, role="school_admin",
                                                          school_id=str(school_id)))
        assert created.status_code == 302
        new_admin = _signed_in(app, username, NEW_PASSWORD)
        assert new_admin.get("/admin/users").status_code == 200
        assert new_admin.get("/admin/schools").status_code == 403
        with sessions() as session:
            account = session.scalar(select(User).where(User.username == username))
            assert (account.role, account.school_id) == (Role.school_admin, school_id)
        # A role change ends the account's sessions.
        assert sysadmin.post(f"/admin/users/{account.id}/role", data=form(role="teacher")).status_code == 302
        assert _signed_out(new_admin)
        with sessions() as session:
            assert session.get(User, account.id).role == Role.teacher
        assert sysadmin.post(f"/admin/users/{account.id}/role", data=form(role="sysadmin")).status_code == 400
    finally:
        with sessions() as session, session.begin():
            session.execute(delete(User).where(User.school_id == school_id))
            session.execute(delete(School).where(School.id == school_id))


def test_every_new_route_sends_anonymous_users_to_login(app: Flask, world: World) -> None:
    anonymous = _fresh(app)
    uid = world.users["colleague"]
    for method, path in [("GET", "/account/password"), ("POST", "/account/password"), ("GET", "/admin/users"),
                         ("POST", "/admin/users"), ("POST", f"/admin/users/{uid}/disable"),
                         ("POST", f"/admin/users/{uid}/enable"), ("POST", f"/admin/users/{uid}/password"),
                         ("POST", f"/admin/users/{uid}/role"), ("GET", "/admin/schools"), ("POST", "/admin/schools")]:
        response = anonymous.open(path, method=method, data=form() if method == "POST" else None)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), (method, path)


def test_an_admin_cannot_manage_their_own_account_or_a_sysadmin_here(app: Flask, world: World) -> None:
    admin = client_as(app, world.users["admin"])
    assert admin.post(f"/admin/users/{world.users['admin']}/disable", data=form()).status_code == 404
    assert admin.post(f"/admin/users/{world.users['sysadmin']}/disable", data=form()).status_code == 404
    sysadmin = client_as(app, world.users["sysadmin"])
    assert sysadmin.post(f"/admin/users/{world.users['sysadmin']}/disable", data=form()).status_code == 404


def test_api_tokens_expire_and_rotate(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["colleague"])
    first_page = client.post("/account/token", data=form()).get_data(as_text=True)
    first = first_page.split('id="new-token">', 1)[1].split("<", 1)[0]
    with sessions() as session:
        expires = session.get(User, world.users["colleague"]).api_token_expires_at
    assert timedelta(days=89) < expires - utcnow() <= timedelta(days=90)
    assert "有效期至" in client.get("/account").get_data(as_text=True)
    api = app.test_client()
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {first}"}).status_code == 200
    second_page = client.post("/account/token", data=form()).get_data(as_text=True)
    second = second_page.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401, "rotated out"
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    with sessions() as session, session.begin():
        account = session.get(User, world.users["colleague"])
        assert account.api_token_hash == hash_api_token(second)
        account.api_token_expires_at = utcnow() - timedelta(seconds=1)
    expired = api.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})
    assert expired.status_code == 401 and "已过期" in expired.json["error"]
    assert "令牌已过期" in client.get("/account").get_data(as_text=True)


def test_usernames_are_unique_whatever_their_case_in_the_database(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.add(User(username=world.usernames["owner"].upper() + " ", display_name="x", role=Role.teacher,
                         school_id=world.school_a, password_hash="x"))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(User).where(
            User.username_key == world.usernames["owner"].casefold())) == 1
        assert verify_password(session.get(User, world.users["owner"]).password_hash, PASSWORD)
