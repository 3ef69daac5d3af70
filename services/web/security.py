"""CSRF protection for forms, session cookie settings and security headers on every response.

The CSRF token lives in the (signed) session and is compared in constant time with the form field
``csrf_token`` or the ``X-CSRF-Token`` header. The JSON API under /api/v1 is exempt: it accepts only
bearer tokens, never the session cookie, so a forged cross-site request carries no credentials.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta

from flask import Flask, Response, request, session

from shared.settings import Settings

logger = logging.getLogger(__name__)

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
API_PREFIX = "/api/"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class CsrfError(Exception):
    """A state-changing form arrived without the session's CSRF token."""


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return str(token)


def rotate_csrf_token() -> None:
    """A new token after login, so a token planted before login is worthless."""
    session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)


def _check_csrf() -> None:
    if request.method in SAFE_METHODS or request.path.startswith(API_PREFIX):
        return
    expected = session.get(CSRF_SESSION_KEY)
    # Reading the form may raise 413 for an oversized body; that is handled like any 413.
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(str(expected).encode(), str(sent).encode()):
        logger.info("CSRF check failed for %s %s", request.method, request.path)
        raise CsrfError()


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if not request.path.startswith("/static/"):
        # Pages show students' work: keep them out of shared school PCs' caches.
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_security(app: Flask, settings: Settings) -> None:
    """Cookie flags, the CSRF check before every request and the headers after it."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_NAME="yuejuan_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=10),
    )
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.register_error_handler(CsrfError, _csrf_failed)


def _csrf_failed(_exc: CsrfError) -> tuple[str, int]:
    from services.web.errors import render_error

    return render_error(400, "表单已失效（安全令牌不匹配）。请返回上一页，刷新后重新提交。")
