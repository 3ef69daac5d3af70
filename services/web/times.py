"""Times in the web app and its API, in the one zone people read (``YUEJUAN_TIMEZONE``, see shared/clock.py)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.web.context import settings
from shared.clock import iso, local_text, people_zone


def person_zone() -> ZoneInfo:
    return people_zone(settings().timezone)


def api_time(moment: datetime | None) -> str | None:
    """ISO 8601 with the zone's offset (``2026-03-02T16:00:05+08:00``), the same for SQLite's naive times."""
    return iso(moment, person_zone())


def zone_name() -> str:
    """How pages name the zone: 北京时间 for Asia/Shanghai, else its IANA name."""
    name = settings().timezone
    return "北京时间" if name == "Asia/Shanghai" else f"{name} 时间"


def shown_time(moment: datetime | None) -> str:
    """``2026-03-02 16:00:05`` in the zone: how pages show a time."""
    return local_text(moment, person_zone())
