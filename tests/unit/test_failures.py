"""Failure categories (which are the environment's) and the report-job error text they are stored as."""

from __future__ import annotations

import errno
import os

import pytest
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.failures import (
    BROKER_UNAVAILABLE,
    DATABASE_UNAVAILABLE,
    DISK_FULL,
    INTERNAL,
    SERVICE_UNAVAILABLE,
    STORAGE_IO,
    STORAGE_UNWRITABLE,
    ErrorCategory,
    classify,
)
from shared.report_jobs import MAX_ERROR_CHARS, ReportError, parse_error


def _os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code), "/srv/data/reports/x.xlsx")


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (_os_error(errno.ENOSPC), DISK_FULL),
        (_os_error(errno.EDQUOT), DISK_FULL),
        (_os_error(errno.EROFS), STORAGE_UNWRITABLE),
        (PermissionError(errno.EACCES, "Permission denied"), STORAGE_UNWRITABLE),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), STORAGE_UNWRITABLE),
        (FileExistsError(errno.EEXIST, "File exists"), STORAGE_UNWRITABLE),
        (_os_error(errno.EIO), STORAGE_IO),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), INTERNAL),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), SERVICE_UNAVAILABLE),
        (OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
         DATABASE_UNAVAILABLE),
        (KombuOperationalError("Error 111 connecting to redis"), BROKER_UNAVAILABLE),
        (RedisConnectionError("Error 111"), BROKER_UNAVAILABLE),
        (OperationalError("SELECT x", {}, Exception("no such table: x")), INTERNAL),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), INTERNAL),
        (ValueError("报表任务 1 缺少 assignment_id"), INTERNAL),
        (KeyError("content"), INTERNAL),
    ],
)
def test_classify(exc: BaseException, category: ErrorCategory) -> None:
    assert classify(exc) == category


def test_an_explicit_cause_is_followed_but_an_error_while_handling_one_is_not() -> None:
    try:
        raise RuntimeError("could not save") from _os_error(errno.ENOSPC)
    except RuntimeError as exc:
        assert classify(exc) == DISK_FULL
    try:
        try:
            raise _os_error(errno.ENOSPC)
        except OSError:
            raise ValueError("a bug in the handler")  # noqa: B904 -- only __context__ links the two
    except ValueError as exc:
        assert classify(exc) == INTERNAL


def test_environmental_categories_are_the_ones_worth_retrying() -> None:
    assert all(c.environmental for c in (DISK_FULL, STORAGE_UNWRITABLE, STORAGE_IO, DATABASE_UNAVAILABLE,
                                         BROKER_UNAVAILABLE, SERVICE_UNAVAILABLE))
    assert not INTERNAL.environmental


def test_error_text_round_trips_with_the_category_first() -> None:
    error = ReportError(DISK_FULL, "OSError: [Errno 28] No space left on device: '/srv/x'\nmore", 3, 10)
    text = error.to_text()
    assert text.splitlines()[0] == "[disk_full retry=3/10] 磁盘空间不足"
    assert parse_error(text) == error and parse_error(text).retrying  # type: ignore[union-attr]
    final = parse_error(ReportError(STORAGE_UNWRITABLE, "detail").to_text())
    assert final == ReportError(STORAGE_UNWRITABLE, "detail") and not final.retrying
    assert len(ReportError(INTERNAL, "x" * 10_000).to_text()) == MAX_ERROR_CHARS


def test_old_and_empty_error_texts() -> None:
    assert parse_error(None) is None and parse_error("") is None
    legacy = parse_error("OSError: [Errno 28] No space left on device: '/srv/x'")
    assert legacy == ReportError(INTERNAL, "OSError: [Errno 28] No space left on device: '/srv/x'")
    unknown = parse_error("[gremlins] 未知原因\ndetail")
    assert unknown is not None and (unknown.label, unknown.detail, unknown.category.environmental) == (
        "未知原因", "detail", False)
