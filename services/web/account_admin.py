"""Who may manage which account, and the account changes admins make (each audited by the caller's actor).

A school admin manages the teachers of their own school; a sysadmin manages every teacher and school admin and
creates schools. Nobody manages their own account here (that is the account page), and sysadmins are managed
from the command line only. Anything outside the caller's reach is answered with 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.web.actor import Actor
from shared.accounts import AccountError, check_password, clean_username, end_sessions, revoke_api_token, set_password
from shared.models import Role, School, User
from shared.models.org import username_key

MANAGED_ROLES = (Role.teacher, Role.school_admin)


@dataclass(frozen=True)
class NewAccount:
    username: str
    display_name: str
    password: str
    role: Role
    school_id: int | None


def roles_creatable_by(admin: User) -> tuple[Role, ...]:
    return MANAGED_ROLES if admin.role == Role.sysadmin else (Role.teacher,)


def managed_users(admin: User) -> Select[tuple[User]]:
    query = select(User).where(User.role.in_(MANAGED_ROLES)).order_by(User.school_id, User.role, User.username)
    if admin.role == Role.sysadmin:
        return query
    if admin.role == Role.school_admin and admin.school_id is not None:
        return query.where(User.school_id == admin.school_id, User.role == Role.teacher)
    return query.where(User.id == -1)


def get_managed_user_or_404(session: Session, admin: User, user_id: int) -> User:
    account = session.scalar(managed_users(admin).where(User.id == user_id))
    if account is None or account.id == admin.id:
        abort(404)
    return account


def create_account(session: Session, admin: User, who: Actor, new: NewAccount) -> User:
    """A new account of a role and school the admin may create; AccountError says what is wrong."""
    username = clean_username(new.username)
    display_name = new.display_name.strip() or username
    if len(display_name) > 100:
        raise AccountError("姓名不能超过 100 个字。")
    if new.role not in roles_creatable_by(admin):
        raise AccountError("您不能创建这种角色的账户。")
    school_id = admin.school_id if admin.role != Role.sysadmin else new.school_id
    if school_id is None or session.get(School, school_id) is None:
        raise AccountError("请选择账户所属的学校。")
    if session.scalar(select(User.id).where(User.username_key == username_key(username))) is not None:
        raise AccountError(f"用户名“{username}”已被使用（不区分大小写）。")
    account = User(username=username, display_name=display_name, role=new.role, school_id=school_id,
                   password_hash=check_password(new.password, username))
    session.add(account)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the same name
        raise AccountError(f"用户名“{username}”已被使用（不区分大小写）。") from exc
    who.record(session, "user.create", object_type="user", object_id=account.id, role=str(new.role),
               school_id=school_id)
    return account


def set_active(session: Session, who: Actor, account: User, active: bool) -> None:
    """Disable (every session and the API token end at once) or enable an account."""
    account.is_active = active
    if not active:
        end_sessions(account)
        revoke_api_token(account)
    who.record(session, "user.enable" if active else "user.disable", object_type="user", object_id=account.id)


def reset_password(session: Session, who: Actor, account: User, password: str) -> None:
    """An admin sets a new password (policy-checked); the account's sessions end."""
    set_password(account, password)
    who.record(session, "user.password_reset", object_type="user", object_id=account.id)


def change_role(session: Session, who: Actor, account: User, role: Role) -> None:
    if role not in MANAGED_ROLES:
        raise AccountError("只能在教师和学校管理员之间更改角色。")
    if account.role == role:
        return
    previous = account.role
    account.role = role
    end_sessions(account)
    who.record(session, "user.role_change", object_type="user", object_id=account.id, old=str(previous),
               new=str(role))


def create_school(session: Session, who: Actor, name: str) -> School:
    name = name.strip()
    if not name or len(name) > 200:
        raise AccountError("学校名称不能为空，且不超过 200 个字。")
    if any(not ch.isprintable() for ch in name):
        raise AccountError("学校名称不能包含换行或控制字符。")
    if session.scalar(select(School.id).where(School.name == name)) is not None:
        raise AccountError(f"学校“{name}”已存在。")
    school = School(name=name)
    session.add(school)
    session.flush()
    who.record(session, "school.create", object_type="school", object_id=school.id)
    return school
