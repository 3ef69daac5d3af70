"""Password hashing (argon2) and API token hashing, shared by the CLI and the web app."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("密码至少 8 位 (password must be at least 8 characters)")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


API_TOKEN_PREFIX = "yj_"


def new_api_token() -> str:
    """A fresh random API token; it is shown once and only its hash is stored."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    """SHA-256 of a token: tokens are long and random, so a fast hash is enough and allows a lookup."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
