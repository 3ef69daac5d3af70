"""Sign-in and sign-out and the account page (API token)."""

from __future__ import annotations

import logging
import secrets
from functools import cache
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from sqlalchemy import select

from services.web.actor import Actor
from services.web.context import client_ip, db
from services.web.errors import render_error
from services.web.guards import actor, current_user, login_required, session_fingerprint, user
from services.web.login_limit import LOGIN_FAILED, LOGIN_SUCCESS, is_blocked
from services.web.security import rotate_csrf_token
from services.web.templating import ROLE_NAMES
from shared.models import User
from shared.security import hash_api_token, hash_password, new_api_token, verify_password

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("classes.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if current_user() is not None:
            return redirect(url_for("classes.index"))
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    session_db = db()
    who = Actor(name=username[:120] or "(空)", user_id=None, ip=client_ip())
    if is_blocked(session_db, who.name, who.ip):
        who.record(session_db, "auth.login_blocked")
        session_db.commit()
        return render_error(429)
    account = session_db.scalar(select(User).where(User.username == username)) if username else None
    # An unknown username costs the same argon2 work as a known one, so timing does not reveal which exist.
    valid = verify_password(account.password_hash if account else _dummy_hash(), password)
    if account is None or not account.is_active or not valid:
        who.record(
            session_db, LOGIN_FAILED, object_type="user" if account else None,
            object_id=account.id if account else None,
        )
        session_db.commit()
        logger.info("failed login for %r from %s", username, who.ip)
        return render_template("login.html", next=next_url, username=username, error="用户名或密码错误。"), 401
    session.clear()
    session.permanent = True
    session["uid"] = account.id
    session["fp"] = session_fingerprint(account)
    rotate_csrf_token()
    Actor(account.username, account.id, who.ip).record(session_db, LOGIN_SUCCESS, object_type="user",
                                                       object_id=account.id)
    session_db.commit()
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout() -> Any:
    account = current_user()
    if account is not None:
        actor().record(db(), "auth.logout", object_type="user", object_id=account.id)
        db().commit()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/account")
@login_required
def account() -> Any:
    return render_template("account.html", role_name=ROLE_NAMES[user().role], new_token=None)


@bp.post("/account/token")
@login_required
def create_token() -> Any:
    """A new API token replaces the old one; it is shown on this response only."""
    account = user()
    token = new_api_token()
    account.api_token_hash = hash_api_token(token)
    actor().record(db(), "user.api_token", object_type="user", object_id=account.id)
    db().commit()
    return render_template("account.html", role_name=ROLE_NAMES[account.role], new_token=token)


@bp.post("/account/token/revoke")
@login_required
def revoke_token() -> Any:
    account = user()
    account.api_token_hash = None
    actor().record(db(), "user.api_token_revoked", object_type="user", object_id=account.id)
    db().commit()
    return redirect(url_for("auth.account"))
