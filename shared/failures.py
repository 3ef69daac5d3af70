"""What kind of failure an exception is: the environment's (disk, database, broker), worth trying again later,
or a bug. Shared by the report tasks (retry or fail) and the web app (503/507 instead of 500).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCategory:
    code: str
    label: str
    # The environment's fault (disk, database, broker): the same job may well succeed later.
    environmental: bool


DISK_FULL = ErrorCategory("disk_full", "磁盘空间不足", True)
STORAGE_UNWRITABLE = ErrorCategory("storage_unwritable", "存储目录不可写", True)
STORAGE_IO = ErrorCategory("storage_io", "存储读写出错", True)
DATABASE_UNAVAILABLE = ErrorCategory("database_unavailable", "数据库暂时不可用", True)
BROKER_UNAVAILABLE = ErrorCategory("broker_unavailable", "任务队列暂时不可用", True)
SERVICE_UNAVAILABLE = ErrorCategory("service_unavailable", "后台服务暂时不可用", True)
# Anything else: a bug, a missing file, bad data. Retrying would not help (the label is the report pages').
INTERNAL = ErrorCategory("internal", "生成报表时出错", False)
CATEGORIES = {
    category.code: category
    for category in (DISK_FULL, STORAGE_UNWRITABLE, STORAGE_IO, DATABASE_UNAVAILABLE, BROKER_UNAVAILABLE,
                     SERVICE_UNAVAILABLE, INTERNAL)
}

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# The directory exists but cannot take the file: read-only mount, permissions, or a file where a folder should be.
_UNWRITABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR})


def _database_category(exc: BaseException) -> ErrorCategory | None:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):  # pool exhausted, connection lost
        return DATABASE_UNAVAILABLE
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return DATABASE_UNAVAILABLE
        # PostgreSQL: connection refused or cut, server restarting, deadlock, statement cancelled. SQLite's
        # OperationalError also covers a missing table or column, which no retry will fix.
        if isinstance(exc, sa_exc.OperationalError) and not str(exc.orig).startswith("no such "):
            return DATABASE_UNAVAILABLE
    return None


def _broker_category(exc: BaseException) -> ErrorCategory | None:
    from kombu.exceptions import OperationalError as KombuOperationalError

    if isinstance(exc, KombuOperationalError):
        return BROKER_UNAVAILABLE
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # the embedded mode runs without the redis client
        return None
    return BROKER_UNAVAILABLE if isinstance(exc, RedisConnectionError | RedisTimeoutError) else None


def _os_category(exc: BaseException) -> ErrorCategory | None:
    if not isinstance(exc, OSError):
        return None
    if isinstance(exc, ConnectionError | TimeoutError):
        return SERVICE_UNAVAILABLE
    if exc.errno == errno.ENOENT:  # a missing input file is not cured by waiting
        return None
    if exc.errno in _DISK_FULL_ERRNOS:
        return DISK_FULL
    if exc.errno in _UNWRITABLE_ERRNOS:
        return STORAGE_UNWRITABLE
    return STORAGE_IO


def classify(exc: BaseException) -> ErrorCategory:
    """What kind of failure ``exc`` is; follows explicit causes (``raise ... from``) and a driver's original."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for check in (_database_category, _broker_category, _os_category):
            category = check(current)
            if category is not None:
                return category
        current = current.__cause__
    return INTERNAL


def error_detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
