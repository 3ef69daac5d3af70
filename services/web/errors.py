"""Error pages in Chinese (HTML for pages, JSON under /api), including 413 for oversized uploads.

A database or broker that cannot be reached answers 503 with ``Retry-After`` (the request may well work a few
seconds later, e.g. while PostgreSQL restarts), a full disk 507; neither is logged as a bug.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from services.web.context import close_db, settings
from shared.failures import (
    BROKER_UNAVAILABLE,
    DATABASE_UNAVAILABLE,
    DISK_FULL,
    SERVICE_UNAVAILABLE,
    STORAGE_IO,
    STORAGE_UNWRITABLE,
    ErrorCategory,
    classify,
)

logger = logging.getLogger(__name__)

TITLES = {
    400: "请求无效",
    401: "需要登录",
    403: "没有权限",
    404: "找不到页面",
    405: "不支持的操作",
    409: "操作冲突",
    413: "上传内容太大",
    429: "尝试次数过多",
    500: "服务器出错",
    503: "服务暂时不可用",
    507: "服务器磁盘空间不足",
}
RETRY_AFTER_S = 10
DEFAULT_MESSAGES = {
    400: "提交的内容无效，请检查后重试。",
    401: "请先登录。",
    403: "您的账户没有执行此操作的权限。",
    404: "页面不存在，或者您无权查看它。",
    405: "此地址不支持该操作。",
    409: "数据已被修改，请刷新页面后重试。",
    429: "登录失败次数过多，请 15 分钟后再试。",
    500: "服务器处理请求时出错，请稍后重试；如果问题持续，请联系管理员。",
    503: "服务暂时不可用，请稍后重试。",
}
# What the service lacks, as the 503/507 page says it; the category labels are the report pages' wording.
UNAVAILABLE_MESSAGES = {
    DATABASE_UNAVAILABLE: f"暂时无法连接数据库（可能正在重启），请约 {RETRY_AFTER_S} 秒后刷新页面重试。",
    BROKER_UNAVAILABLE: f"暂时无法连接任务队列，请约 {RETRY_AFTER_S} 秒后刷新页面重试。",
    SERVICE_UNAVAILABLE: f"后台服务暂时无法连接，请约 {RETRY_AFTER_S} 秒后刷新页面重试。",
    STORAGE_UNWRITABLE: "服务器暂时无法保存文件（存储目录不可写），请联系管理员。",
    STORAGE_IO: "服务器读写文件时出错，请稍后重试；如果问题持续，请联系管理员。",
}
DISK_FULL_MESSAGE = "服务器磁盘空间不足，未能保存，请联系管理员。"


def _message(code: int) -> str:
    if code == 413:
        return (
            f"上传的内容超过了 {settings().max_upload_mb} MB 的上限。"
            "请分批上传，或把文件压缩（.zip）后再试。"
        )
    return DEFAULT_MESSAGES.get(code, DEFAULT_MESSAGES[400])


def render_error(code: int, message: str | None = None, headers: dict[str, str] | None = None) -> Any:
    """An error response: JSON ``{"error": ...}`` for the API, a Chinese page otherwise."""
    text = message or _message(code)
    if request.path.startswith("/api/"):
        return jsonify(error=text, status=code), code, headers or {}
    page = render_template("error.html", code=code, title=TITLES.get(code, "出错了"), message=text)
    return page, code, headers or {}


def environment_failure(exc: BaseException) -> tuple[int, str, ErrorCategory] | None:
    """(status, message, category) when ``exc`` is the environment's fault rather than a bug, else None."""
    category = classify(exc)
    if category == DISK_FULL:
        return 507, DISK_FULL_MESSAGE, category
    if category in UNAVAILABLE_MESSAGES:
        return 503, UNAVAILABLE_MESSAGES[category], category
    return None


def _unavailable(exc: Exception, status: int, message: str, category: ErrorCategory) -> Any:
    # The driver's message, not SQLAlchemy's, which appends the statement's parameters (names, essay text).
    logger.warning("%s %s: %s (%s: %s)", request.method, request.path, category.code, type(exc).__name__,
                   getattr(exc, "orig", None) or exc)
    # The request's session and user may be unusable now: the page must not touch the database again.
    close_db()
    g.user = None
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    return render_error(status, message, headers)


def _http_error(exc: HTTPException) -> Any:
    code = exc.code or 500
    # Our own abort(..., description="中文说明") is shown; werkzeug's English defaults are not.
    own = exc.description if exc.description and exc.description != type(exc).description else None
    return render_error(code, own)


def _unexpected(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    failure = environment_failure(exc)
    if failure is not None:
        return _unavailable(exc, *failure)
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(500)


def init_errors(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
