"""The audit page for school admins and sysadmins: filterable by action, actor, object and date; paginated."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, render_template, request

from services.web.audit_labels import action_label, object_label
from services.web.audit_query import ACTION_GROUPS, AuditFilter, audit_page
from services.web.context import db
from services.web.guards import admin_required, user
from services.web.numbers import ascii_int
from services.web.times import zone_name

bp = Blueprint("admin", __name__)


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    return ascii_int(value)


@bp.get("/admin/audit")
@admin_required
def audit() -> Any:
    args = request.args
    flt = AuditFilter(
        action=args.get("action", "").strip()[:60], actor=args.get("actor", "").strip()[:120],
        object_type=args.get("object_type", "").strip()[:40], object_id=_int(args.get("object_id")),
        since=_date(args.get("since")), until=_date(args.get("until")),
    )
    result = audit_page(db(), user(), flt, _int(args.get("page")) or 1)
    query_args = {k: v for k, v in args.items() if k != "page" and v}
    return render_template("admin/audit.html", result=result, flt=flt, groups=ACTION_GROUPS, query_args=query_args,
                           action_label=action_label, object_label=object_label, timezone_name=zone_name())
