"""Numbers, text and JSON from outside, read without surprises: ASCII digits only (``"²".isdigit()`` is True but
``int("²")`` raises), ids that fit an INTEGER, no NUL characters (PostgreSQL text cannot hold them), and JSON whose
nesting cannot exhaust the stack."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, abort, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

# Every id column is INTEGER (PostgreSQL casts a bound id to it): a larger number can name no row.
MAX_ID = 2**31 - 1


def ascii_int(value: Any, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """``value`` as an int when it is a string of ASCII digits (optionally signed if ``minimum`` < 0) or an int,
    within [minimum, maximum]; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] == "-" and minimum < 0 else text
        if not digits or len(digits) > 20 or not (digits.isascii() and digits.isdigit()):
            return None
        number = int(text)
    else:
        return None
    return number if minimum <= number <= maximum else None


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` in URLs: at most an INTEGER, so a huge id is a 404 rather than a database overflow."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class DepthSafeJSONProvider(DefaultJSONProvider):
    """JSON nested past what the parser's recursion allows is invalid JSON (400), not an unhandled error (500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if (b"\\u0000" if isinstance(s, bytes) else "\\u0000") in s:
            raise ValueError("JSON with a NUL character")
        try:
            return json.loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def _refuse_nul() -> None:
    """A NUL in a query parameter or form field is refused before any view stores or looks it up."""
    values = list(request.args.values())
    if request.method not in ("GET", "HEAD") and request.mimetype in (
        "application/x-www-form-urlencoded", "multipart/form-data"
    ):
        values += request.form.values()
    if any("\x00" in value for value in values):
        abort(400, description="提交的内容包含无效的控制字符（NUL），请检查后重试。")


def init_numbers(app: Flask) -> None:
    """Before any blueprint is registered (rules bind their converters when they are added)."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.json_provider_class = DepthSafeJSONProvider
    app.json = DepthSafeJSONProvider(app)
    app.before_request(_refuse_nul)
