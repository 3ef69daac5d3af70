"""Error pages in Chinese (HTML for pages, JSON under /api), including 413 for oversized uploads."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from services.web.context import settings

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
}
DEFAULT_MESSAGES = {
    400: "提交的内容无效，请检查后重试。",
    401: "请先登录。",
    403: "您的账户没有执行此操作的权限。",
    404: "页面不存在，或者您无权查看它。",
    405: "此地址不支持该操作。",
    409: "数据已被修改，请刷新页面后重试。",
    429: "登录失败次数过多，请 15 分钟后再试。",
    500: "服务器处理请求时出错，请稍后重试；如果问题持续，请联系管理员。",
}


def _message(code: int) -> str:
    if code == 413:
        return (
            f"上传的内容超过了 {settings().max_upload_mb} MB 的上限。"
            "请分批上传，或把文件压缩（.zip）后再试。"
        )
    return DEFAULT_MESSAGES.get(code, DEFAULT_MESSAGES[400])


def render_error(code: int, message: str | None = None) -> Any:
    """An error response: JSON ``{"error": ...}`` for the API, a Chinese page otherwise."""
    text = message or _message(code)
    if request.path.startswith("/api/"):
        return jsonify(error=text, status=code), code
    return render_template("error.html", code=code, title=TITLES.get(code, "出错了"), message=text), code


def _http_error(exc: HTTPException) -> Any:
    code = exc.code or 500
    # Our own abort(..., description="中文说明") is shown; werkzeug's English defaults are not.
    own = exc.description if exc.description and exc.description != type(exc).description else None
    return render_error(code, own)


def _unexpected(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(500)


def init_errors(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
