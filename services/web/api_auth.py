"""Bearer-token authentication for the JSON API; the session cookie is never accepted there."""

from __future__ import annotations

import logging
from typing import Any

from flask import g, jsonify, request
from sqlalchemy import select

from services.web.context import db
from shared.accounts import token_expired
from shared.models import Role, User
from shared.security import hash_api_token

logger = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"api.openapi"})


def authenticate() -> Any:
    """Before every API request: set g.user from ``Authorization: Bearer <token>`` or answer 401."""
    g.user = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return _unauthorized("缺少 API 令牌：请使用 Authorization: Bearer <令牌>。")
    account = db().scalar(select(User).where(User.api_token_hash == hash_api_token(token)))
    if account is None or not account.is_active or account.role == Role.student:  # students have no API
        return _unauthorized("API 令牌无效或已被撤销。")
    if token_expired(account):
        return _unauthorized("API 令牌已过期：请在“账户”页面重新生成（轮换）令牌。")
    g.user = account
    return None


def _unauthorized(message: str) -> Any:
    response = jsonify(error=message, status=401)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="yuejuan"'
    return response
