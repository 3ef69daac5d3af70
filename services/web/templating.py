"""Template globals and filters: the signed-in user, role names, dates in the configured time zone, durations in
Chinese."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, g

from services.web.access import is_admin
from services.web.times import shown_time
from shared.models import Role

ROLE_NAMES = {Role.teacher: "教师", Role.school_admin: "学校管理员", Role.sysadmin: "系统管理员", Role.student: "学生"}


def local_time(moment: datetime | None) -> str:
    """A stored time as people read it: in YUEJUAN_TIMEZONE (default Asia/Shanghai), naive SQLite times being UTC."""
    return shown_time(moment)


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "估算中"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"约 {hours} 小时 {minutes} 分"
    if minutes:
        return f"约 {minutes} 分 {secs} 秒"
    return f"约 {secs} 秒"


def _globals() -> dict[str, Any]:
    account = g.get("user")
    admin = account is not None and is_admin(account)
    return {
        "current_user": account,
        "is_admin_user": admin,
        "role_names": ROLE_NAMES,
        "model_banner": _model_banner() if admin else None,
    }


def _model_banner() -> Any:
    from services.web.context import db, settings
    from services.web.model_banner import model_banner

    return model_banner(db(), lost_after_s=settings().worker_lost_after_s)


def init_templating(app: Flask) -> None:
    app.context_processor(_globals)
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.autoescape = True
