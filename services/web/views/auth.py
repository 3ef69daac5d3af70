"""Sign-in and sign-out, the account page (API token) and changing one's own password."""

from __future__ import annotations

import logging
import secrets
import unicodedata
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from services.web.actor import Actor
from services.web.context import client_ip, db, settings
from services.web.errors import render_error
from services.web.guards import actor, current_user, login_required, session_fingerprint, user
from services.web.login_limit import LOGIN_FAILED, LOGIN_SUCCESS, claim_attempt, clear_attempts
from services.web.security import rotate_csrf_token
from services.web.templating import ROLE_NAMES
from shared.accounts import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    end_sessions,
    issue_api_token,
    revoke_api_token,
    set_password,
    token_expired,
)
from shared.models import User
from shared.models.org import username_key
from shared.security import hash_password, verify_password

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def safe_next(target: str | None) -> str:
    """A path on this site to go to after login; anything else (another host, a scheme, control characters or
    whitespace that browsers strip, backslashes) gives the class list."""
    fallback = url_for("classes.index")
    if not target or len(target) > 2000 or not target.startswith("/"):
        return fallback
    if any(unicodedata.category(ch)[0] in "CZ" for ch in target) or "\\" in target:
        return fallback
    parts = urlsplit(target)
    if target.startswith("//") or parts.scheme or parts.netloc:
        return fallback
    return target


def establish_session(account: User) -> None:
    """A fresh session for ``account`` (new CSRF token), bound to its current session version."""
    session.clear()
    session.permanent = True
    session["uid"] = account.id
    session["fp"] = session_fingerprint(account)
    rotate_csrf_token()


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if current_user() is not None:
            return redirect(url_for("classes.index"))
        return render_template("login.html", next=safe_next(request.args.get("next", "")))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    session_db = db()
    who = Actor(name=username[:120] or "(空)", user_id=None, ip=client_ip())
    if not claim_attempt(session_db, who.name, who.ip):
        who.record(session_db, "auth.login_blocked")
        session_db.commit()
        return render_error(429)
    key = username_key(username)
    account = session_db.scalar(select(User).where(User.username_key == key)) if key else None
    # An unknown username costs the same argon2 work as a known one, so timing does not reveal which exist.
    valid = verify_password(account.password_hash if account else _dummy_hash(), password)
    if account is None or not account.is_active or not valid:
        who.record(
            session_db, LOGIN_FAILED, object_type="user" if account else None,
            object_id=account.id if account else None,
        )
        session_db.commit()
        logger.info("failed login for user id %s from %s", account.id if account else None, who.ip)
        return render_template("login.html", next=safe_next(next_url), username=username,
                               error="用户名或密码错误。"), 401
    establish_session(account)
    clear_attempts(session_db, who.name, who.ip)
    Actor(account.username, account.id, who.ip).record(session_db, LOGIN_SUCCESS, object_type="user",
                                                       object_id=account.id)
    session_db.commit()
    return redirect(safe_next(next_url))


@bp.post("/logout")
def logout() -> Any:
    """Ends this session and every other one of the account (a saved copy of the cookie no longer works)."""
    account = current_user()
    if account is not None:
        end_sessions(account)
        actor().record(db(), "auth.logout", object_type="user", object_id=account.id)
        db().commit()
    session.clear()
    return redirect(url_for("auth.login"))


def _account_page(new_token: str | None = None, status: int = 200) -> Any:
    account = user()
    return render_template("account.html", role_name=ROLE_NAMES[account.role], new_token=new_token,
                           token_expired=account.api_token_hash is not None and token_expired(account),
                           token_days=settings().api_token_days), status


@bp.get("/account")
@login_required
def account() -> Any:
    return _account_page()


@bp.post("/account/token")
@login_required
def create_token() -> Any:
    """A new API token replaces the old one (rotation) and expires after api_token_days; shown on this response
    only."""
    account = user()
    token = issue_api_token(account, settings().api_token_days)
    actor().record(db(), "user.api_token", object_type="user", object_id=account.id,
                   expires_at=account.api_token_expires_at.isoformat() if account.api_token_expires_at else None)
    db().commit()
    return _account_page(new_token=token)


@bp.post("/account/token/revoke")
@login_required
def revoke_token() -> Any:
    account = user()
    revoke_api_token(account)
    actor().record(db(), "user.api_token_revoked", object_type="user", object_id=account.id)
    db().commit()
    return redirect(url_for("auth.account"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> Any:
    """Everyone changes their own password: the current one, then the new one twice. Every other session of
    the account ends; this one continues with a fresh cookie."""
    if request.method == "GET":
        return render_template("account_password.html", errors=[], min_length=MIN_PASSWORD_LENGTH)
    account = user()
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    errors = []
    if not verify_password(account.password_hash, current):
        errors.append("当前密码不正确。")
    elif new != request.form.get("confirm_password", ""):
        errors.append("两次输入的新密码不一致。")
    elif new == current:
        errors.append("新密码不能与当前密码相同。")
    else:
        try:
            set_password(account, new)
        except AccountError as exc:
            errors.append(str(exc))
    if errors:
        db().rollback()
        actor().record(db(), "user.password_change_refused", object_type="user", object_id=account.id)
        db().commit()
        return render_template("account_password.html", errors=errors, min_length=MIN_PASSWORD_LENGTH), 400
    actor().record(db(), "user.password_changed", object_type="user", object_id=account.id)
    db().commit()
    establish_session(account)
    flash("密码已修改。其他设备上的登录已全部退出。", "ok")
    return redirect(url_for("auth.account"))
