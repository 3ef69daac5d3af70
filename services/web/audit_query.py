"""Which audit rows an admin may read, and the filters of the audit page.

A sysadmin reads everything. A school admin reads rows by their school's users and rows about their
school's users, classes, assignments, essays and reports (workers' ``model.grade`` rows are about essays).
Failed logins for unknown usernames belong to no school and are visible to sysadmins only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from shared.models import Assignment, AuditLog, Classroom, Essay, ReportJob, Role, User

PAGE_SIZE = 50
ACTION_GROUPS = {
    "auth.login": "登录（成功、失败、锁定）",
    "auth.logout": "退出登录",
    "user.": "账户（创建、停用启用、密码、角色、API 令牌）",
    "school.create": "创建学校",
    "upload": "上传",
    "essay.view": "查看作文",
    "grade.override": "教师改分",
    "report.download": "下载报表",
    "model.grade": "模型评分",
    "essay.": "作文操作（查看、确认标记、重新评分）",
    "roster": "名单导入",
    "classroom": "班级",
    "assignment": "作业",
    "rubric": "评分标准",
    "report": "报表",
    "privacy": "个人数据（导出、彻底删除）",
    "retention": "到期数据清理",
}


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""
    actor: str = ""
    object_type: str = ""
    object_id: int | None = None
    since: date | None = None
    until: date | None = None


@dataclass
class AuditPage:
    rows: list[AuditLog]
    page: int
    pages: int
    total: int


def audit_scope(user: User) -> ColumnElement[bool]:
    if user.role == Role.sysadmin:
        return true()
    if user.role != Role.school_admin or user.school_id is None:
        return false()
    school = user.school_id
    users = select(User.id).where(User.school_id == school)
    classrooms = select(Classroom.id).where(Classroom.school_id == school)
    assignments = select(Assignment.id).join(Classroom, Assignment.classroom_id == Classroom.id).where(
        Classroom.school_id == school
    )
    essays = select(Essay.id).join(Assignment, Essay.assignment_id == Assignment.id).join(
        Classroom, Assignment.classroom_id == Classroom.id
    ).where(Classroom.school_id == school)
    reports = select(ReportJob.id).where(ReportJob.school_id == school)
    return or_(
        AuditLog.actor_id.in_(users),
        and_(AuditLog.object_type == "user", AuditLog.object_id.in_(users)),
        and_(AuditLog.object_type == "classroom", AuditLog.object_id.in_(classrooms)),
        and_(AuditLog.object_type == "assignment", AuditLog.object_id.in_(assignments)),
        and_(AuditLog.object_type == "essay", AuditLog.object_id.in_(essays)),
        and_(AuditLog.object_type == "report", AuditLog.object_id.in_(reports)),
        and_(AuditLog.object_type == "school", AuditLog.object_id == school),
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def filtered(user: User, flt: AuditFilter) -> Select[tuple[AuditLog]]:
    query = select(AuditLog).where(audit_scope(user))
    if flt.action:
        query = query.where(AuditLog.action.startswith(flt.action, autoescape=True))
    if flt.actor:
        query = query.where(AuditLog.actor.contains(flt.actor, autoescape=True))
    if flt.object_type:
        query = query.where(AuditLog.object_type == flt.object_type)
    if flt.object_id is not None:
        query = query.where(AuditLog.object_id == flt.object_id)
    if flt.since:
        query = query.where(AuditLog.at >= _day_start(flt.since))
    if flt.until:
        query = query.where(AuditLog.at < _day_start(flt.until + timedelta(days=1)))
    return query


def audit_page(session: Session, user: User, flt: AuditFilter, page: int) -> AuditPage:
    query = filtered(user, flt)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = session.scalars(
        query.order_by(AuditLog.at.desc(), AuditLog.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    return AuditPage(list(rows), page, pages, total)
