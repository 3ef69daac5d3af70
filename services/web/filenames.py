"""Names that go into response headers (Content-Disposition): a class name or an assignment title may hold a
newline or other control characters, which a header must never carry."""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 150


def safe_download_name(name: str, fallback: str = "download") -> str:
    """``name`` with control, format and separator characters (newline, tab, zero-width, U+2028...) and path
    separators replaced by one space each run, trimmed and capped; ``fallback`` if nothing is left."""
    out: list[str] = []
    for ch in name:
        bad = ch in '/\\"' or unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")
        if bad or ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(ch)
    cleaned = "".join(out).strip(" .")
    if len(cleaned) > MAX_NAME_CHARS:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: MAX_NAME_CHARS - len(ext) - 1] + dot + ext) if dot and len(ext) <= 8 else \
            cleaned[:MAX_NAME_CHARS]
    return cleaned or fallback
