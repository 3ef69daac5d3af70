"""Account administration pages: school admins manage their teachers; sysadmins also school admins and schools."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from services.web.account_admin import (
    NewAccount,
    change_role,
    create_account,
    create_school,
    get_managed_user_or_404,
    managed_users,
    reset_password,
    roles_creatable_by,
    set_active,
)
from services.web.context import db
from services.web.guards import actor, admin_required, user
from services.web.numbers import ascii_int
from shared.accounts import MIN_PASSWORD_LENGTH, AccountError
from shared.models import Role, School

bp = Blueprint("accounts", __name__)


def _sysadmin_only() -> None:
    if user().role != Role.sysadmin:
        abort(403)


def _users_page(errors: list[str] | None = None, values: dict[str, str] | None = None, status: int = 200) -> Any:
    admin = user()
    session = db()
    schools = (session.scalars(select(School).order_by(School.name)).all() if admin.role == Role.sysadmin
               else [admin.school] if admin.school else [])
    return render_template(
        "admin/users.html", accounts=session.scalars(managed_users(admin)).all(), schools=schools,
        roles=roles_creatable_by(admin), errors=errors or [], values=values or {}, min_length=MIN_PASSWORD_LENGTH,
    ), status


@bp.get("/admin/users")
@admin_required
def users() -> Any:
    return _users_page()


@bp.post("/admin/users")
@admin_required
def create_user() -> Any:
    form = request.form
    role_value = form.get("role", Role.teacher.value)
    new = NewAccount(
        username=form.get("username", ""), display_name=form.get("display_name", ""),
        password=form.get("password", ""), role=Role(role_value) if role_value in Role.__members__ else Role.teacher,
        school_id=ascii_int(form.get("school_id")),
    )
    if role_value not in Role.__members__:
        return _users_page(["角色无效。"], dict(form), 400)
    try:
        account = create_account(db(), user(), actor(), new)
    except AccountError as exc:
        db().rollback()
        return _users_page([str(exc)], {k: v for k, v in form.items() if k != "password"}, 400)
    db().commit()
    flash(f"已创建账户“{account.username}”（{account.display_name}）。请把初始密码当面告诉本人，并提醒其登录后修改。",
          "ok")
    return redirect(url_for("accounts.users"))


def _managed(user_id: int):  # type: ignore[no-untyped-def]
    return get_managed_user_or_404(db(), user(), user_id)


@bp.post("/admin/users/<int:user_id>/disable")
@admin_required
def disable_user(user_id: int) -> Any:
    account = _managed(user_id)
    set_active(db(), actor(), account, False)
    db().commit()
    flash(f"已停用账户“{account.username}”，其登录和 API 令牌立即失效。", "ok")
    return redirect(url_for("accounts.users"))


@bp.post("/admin/users/<int:user_id>/enable")
@admin_required
def enable_user(user_id: int) -> Any:
    account = _managed(user_id)
    set_active(db(), actor(), account, True)
    db().commit()
    flash(f"已启用账户“{account.username}”。", "ok")
    return redirect(url_for("accounts.users"))


@bp.post("/admin/users/<int:user_id>/password")
@admin_required
def reset_user_password(user_id: int) -> Any:
    account = _managed(user_id)
    try:
        reset_password(db(), actor(), account, request.form.get("password", ""))
    except AccountError as exc:
        db().rollback()
        return _users_page([f"重置“{account.username}”的密码失败：{exc}"], status=400)
    db().commit()
    flash(f"已重置“{account.username}”的密码，其所有登录已退出。", "ok")
    return redirect(url_for("accounts.users"))


@bp.post("/admin/users/<int:user_id>/role")
@admin_required
def set_user_role(user_id: int) -> Any:
    _sysadmin_only()
    account = _managed(user_id)
    role_value = request.form.get("role", "")
    try:
        if role_value not in Role.__members__:
            raise AccountError("角色无效。")
        change_role(db(), actor(), account, Role(role_value))
    except AccountError as exc:
        db().rollback()
        return _users_page([str(exc)], status=400)
    db().commit()
    flash(f"已更改“{account.username}”的角色，其所有登录已退出。", "ok")
    return redirect(url_for("accounts.users"))


@bp.get("/admin/schools")
@admin_required
def schools() -> Any:
    _sysadmin_only()
    return _schools_page()


def _schools_page(errors: list[str] | None = None, status: int = 200) -> Any:
    rows = db().scalars(select(School).order_by(School.name)).all()
    return render_template("admin/schools.html", schools=rows, errors=errors or []), status


@bp.post("/admin/schools")
@admin_required
def add_school() -> Any:
    _sysadmin_only()
    try:
        school = create_school(db(), actor(), request.form.get("name", ""))
    except AccountError as exc:
        db().rollback()
        return _schools_page([str(exc)], 400)
    db().commit()
    flash(f"已创建学校“{school.name}”。", "ok")
    return redirect(url_for("accounts.schools"))
