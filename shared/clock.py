"""Times as people read them: one configured time zone (YUEJUAN_TIMEZONE, default Asia/Shanghai) for web pages,
workbooks and the API's ISO 8601 strings, whatever zone the server runs in.

The database stores UTC (PostgreSQL returns aware datetimes, SQLite naive ones); everything here takes either.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"


@lru_cache(maxsize=8)
def people_zone(name: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    return ZoneInfo(name)


def as_utc(moment: datetime) -> datetime:
    """An aware datetime; a naive one is UTC (how SQLite returns stored times)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def in_zone(moment: datetime, zone: tzinfo) -> datetime:
    return as_utc(moment).astimezone(zone)


def wall_time(moment: datetime, zone: tzinfo) -> datetime:
    """The clock reading in ``zone``, without a zone: what an Excel cell can hold."""
    return in_zone(moment, zone).replace(tzinfo=None)


def local_text(moment: datetime | None, zone: tzinfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "" if moment is None else in_zone(moment, zone).strftime(fmt)


def iso(moment: datetime | None, zone: tzinfo) -> str | None:
    """ISO 8601 with the zone's offset, to the second (``2026-03-02T16:00:05+08:00``); None stays None."""
    return None if moment is None else in_zone(moment, zone).isoformat(timespec="seconds")


def now_in(zone: tzinfo) -> datetime:
    return datetime.now(UTC).astimezone(zone)
