"""Login with argon2 hashes, audit of successes and failures, the login rate limit, sessions and API tokens."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from shared.models import AuditLog, User
from shared.security import hash_api_token
from tests.factories.world import World
from tests.web.conftest import CSRF, PASSWORD, client_as, form, make_app


def _login_page(app: Flask):  # type: ignore[no-untyped-def]
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    return client


def _actions(sessions: sessionmaker[Session], actor: str) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.actor == actor).order_by(AuditLog.id)))


def test_login_success_and_failure_are_audited(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    username = world.usernames["owner"]
    client = _login_page(app)
    bad = client.post("/login", data=form(username=username, password="wrong-password"))
    assert bad.status_code == 401 and "用户名或密码错误" in bad.get_data(as_text=True)
    good = client.post("/login", data=form(username=username, password=PASSWORD, next="/classes"))
    assert good.status_code == 302 and good.headers["Location"] == "/classes"
    assert client.get("/classes").status_code == 200
    assert _actions(sessions, username) == ["auth.login_failed", "auth.login_success"]
    with sessions() as session:
        failed = session.scalar(
            select(AuditLog).where(AuditLog.actor == username, AuditLog.action == "auth.login_failed")
        )
        assert failed is not None and failed.object_id == world.users["owner"] and failed.ip == "127.0.0.1"


def test_login_rotates_the_csrf_token_and_ignores_foreign_next_urls(app: Flask, world: World) -> None:
    client = _login_page(app)
    response = client.post("/login", data=form(username=world.usernames["owner"], password=PASSWORD,
                                               next="//evil.example/x"))
    assert response.headers["Location"] == "/classes"
    with client.session_transaction() as sess:
        assert sess["csrf"] != CSRF


def test_five_failures_lock_the_username_from_that_address(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    username = world.usernames["colleague"]
    client = _login_page(app)
    for _ in range(5):
        assert client.post("/login", data=form(username=username, password="nope-nope")).status_code == 401
    blocked = client.post("/login", data=form(username=username, password=PASSWORD))
    assert blocked.status_code == 429 and "15 分钟" in blocked.get_data(as_text=True)
    assert _actions(sessions, username)[-1] == "auth.login_blocked"
    # Another address is not locked out by these failures.
    other = app.test_client()
    with other.session_transaction() as sess:
        sess["csrf"] = CSRF
    ok = other.post("/login", data=form(username=username, password=PASSWORD), environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert ok.status_code == 302


def test_unknown_user_and_inactive_user_cannot_log_in(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = _login_page(app)
    assert client.post("/login", data=form(username=f"nobody-{world.tag}", password=PASSWORD)).status_code == 401
    with sessions() as session, session.begin():
        session.get(User, world.users["outsider"]).is_active = False
    assert client.post("/login", data=form(username=world.usernames["outsider"], password=PASSWORD)).status_code == 401


def test_pages_require_login_and_a_deactivated_user_is_signed_out(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    anonymous = app.test_client()
    response = anonymous.get(f"/classes/{world.classroom}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    client = client_as(app, world.users["owner"])
    assert client.get("/classes").status_code == 200
    with sessions() as session, session.begin():
        session.get(User, world.users["owner"]).is_active = False
    assert client.get("/classes").status_code == 302


def test_logout_clears_the_session(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    assert client.post("/logout", data=form()).status_code == 302
    assert client.get("/classes").status_code == 302


def test_session_cookie_flags(app: Flask, world: World, tmp_path: Path, pg_url: str, redis_url: str) -> None:
    client = _login_page(app)
    response = client.post("/login", data=form(username=world.usernames["owner"], password=PASSWORD))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure_app = make_app(pg_url, redis_url, tmp_path, session_cookie_secure=True)
    secure = _login_page(secure_app)
    response = secure.post("/login", data=form(username=world.usernames["owner"], password=PASSWORD))
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    app_state(secure_app).engine.dispose()


def test_account_page_creates_a_token_shown_once_and_stores_only_its_hash(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["colleague"])
    page = client.post("/account/token", data=form()).get_data(as_text=True)
    token = page.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("yj_")
    with sessions() as session:
        stored = session.get(User, world.users["colleague"]).api_token_hash
    assert stored == hash_api_token(token) and token not in client.get("/account").get_data(as_text=True)
    api = app.test_client()
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json["username"] == \
        world.usernames["colleague"]
    client.post("/account/token/revoke", data=form())
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
