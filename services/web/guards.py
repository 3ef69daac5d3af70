"""The signed-in user of each request and the guards on views: who is signed in, the actor for the audit log,
login and admin checks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for

from services.web.actor import Actor
from services.web.context import client_ip, db
from shared.models import Role, User

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_ROLES = frozenset({Role.school_admin, Role.sysadmin})


def session_fingerprint(user: User) -> str:
    """Ties a session cookie to the password and the session version: a logout, a password or role change or a
    deactivation bumps the version, and every cookie issued before it stops working (checked on every request)."""
    material = f"{user.session_version or 0}:{user.password_hash}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def current_user() -> User | None:
    return g.get("user")


def user() -> User:
    """The signed-in user of a route that requires one."""
    account = g.get("user")
    if account is None:
        abort(401)
    return account


def actor() -> Actor:
    account = g.get("user")
    if account is None:
        return Actor(name="anonymous", user_id=None, ip=client_ip())
    return Actor(name=account.username, user_id=account.id, ip=client_ip())


def load_session_user() -> None:
    """Before each page request: the user named by the session cookie, if still active."""
    g.user = None
    if request.path.startswith(("/static/", "/api/")):
        return
    user_id = session.get("uid")
    if user_id is None:
        return
    account = db().get(User, user_id)
    if account is None or not account.is_active or session.get("fp") != session_fingerprint(account):
        session.clear()
        return
    g.user = account


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


# What a signed-in student may open: their own pages, signing out, their account's password, static files.
STUDENT_BLUEPRINTS = frozenset({"student"})
STUDENT_ENDPOINTS = frozenset({"static", "health.healthz", "auth.login", "auth.logout", "auth.account",
                               "auth.change_password"})


def keep_students_to_their_pages() -> Any:
    """Before each page request: a student account reaches nothing of the teachers' (403); the home page sends it
    to its own."""
    account = g.get("user")
    if account is None or account.role != Role.student:
        return None
    if request.blueprint in STUDENT_BLUEPRINTS or request.endpoint in STUDENT_ENDPOINTS:
        return None
    if request.endpoint in ("classes.home", "classes.index"):
        return redirect(url_for("student.home"))
    abort(403)


def student_required(view: F) -> F:
    """Student accounts only (anyone else signed in gets 403); the view reads ``g.user.student_id``."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        account = g.get("user")
        if account is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if account.role != Role.student or account.student_id is None:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def admin_required(view: F) -> F:
    """School admins and sysadmins only; a teacher gets 403."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        account = g.get("user")
        if account is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if account.role not in ADMIN_ROLES:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
