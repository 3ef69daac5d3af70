"""Account rules shared by the web and the CLI: usernames, the password policy, ending sessions, API tokens."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from shared.models import User
from shared.models.base import utcnow
from shared.models.org import username_key
from shared.security import hash_api_token, hash_password, new_api_token

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200
MAX_USERNAME_LENGTH = 80
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
# Letters (any script), digits, and . _ - @ inside; no spaces or control characters anywhere.
_USERNAME = re.compile(r"^[\w][\w.@-]*$")


class AccountError(ValueError):
    """A username or password that breaks the rules; the message says which rule, in Chinese."""


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip() and not line.startswith("#"))


def clean_username(raw: str) -> str:
    """The username as it will be stored (trimmed), or AccountError saying what is wrong with it."""
    username = unicodedata.normalize("NFKC", raw).strip()
    if not username:
        raise AccountError("请填写用户名。")
    if len(username) > MAX_USERNAME_LENGTH:
        raise AccountError(f"用户名不能超过 {MAX_USERNAME_LENGTH} 个字符。")
    if not _USERNAME.match(username):
        raise AccountError("用户名只能由文字、数字和 . _ - @ 组成，不能有空格，且须以文字或数字开头。")
    return username


def password_problems(password: str, username: str) -> list[str]:
    """Every rule ``password`` breaks for the account ``username`` (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"密码至少 {MIN_PASSWORD_LENGTH} 个字符。")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符。")
    folded = password.strip().casefold()
    if folded in common_passwords():
        problems.append("这个密码太常见，很容易被猜到，请换一个。")
    elif len(set(folded)) <= 2:
        problems.append("密码不能只由一两个字符重复组成。")
    key = username_key(username)
    if key and key in unicodedata.normalize("NFKC", password).casefold():
        problems.append("密码不能与用户名相同，也不能包含用户名。")
    return problems


def check_password(password: str, username: str) -> str:
    """The argon2 hash of an acceptable password; AccountError naming every rule it breaks otherwise."""
    problems = password_problems(password, username)
    if problems:
        raise AccountError(" ".join(problems))
    return hash_password(password)


def end_sessions(account: User) -> None:
    """Every session cookie issued to ``account`` so far stops working (its fingerprint no longer matches)."""
    account.session_version = (account.session_version or 0) + 1


def set_password(account: User, password: str) -> None:
    """A new password (policy-checked) that also signs the account out everywhere."""
    account.password_hash = check_password(password, account.username)
    end_sessions(account)


def issue_api_token(account: User, days: int, now: datetime | None = None) -> str:
    """A new token for ``account`` valid for ``days``; the old one stops working at once (rotation)."""
    token = new_api_token()
    account.api_token_hash = hash_api_token(token)
    account.api_token_expires_at = (now or utcnow()) + timedelta(days=days)
    return token


def revoke_api_token(account: User) -> None:
    account.api_token_hash = None
    account.api_token_expires_at = None


def token_expired(account: User, now: datetime | None = None) -> bool:
    """A token with no expiry is treated as expired: every token issued since 0005 has one."""
    expires = account.api_token_expires_at
    if expires is None:
        return True
    if expires.tzinfo is None:  # SQLite gives naive UTC datetimes back
        expires = expires.replace(tzinfo=UTC)
    return expires <= (now or utcnow())
