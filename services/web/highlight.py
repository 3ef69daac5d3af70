"""Essay text with its located errors marked inline, built server-side with every piece of text escaped.

Student text is never trusted: each plain segment and each marked segment goes through
``markupsafe.escape``; only the tags built here are markup. Overlapping or out-of-range spans are
not marked inline (they still appear in the list of errors below the essay).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from shared.models import ErrorAnnotation

TYPE_CLASSES = {"错别字": "typo", "标点": "punct", "病句": "grammar", "用词不当": "word", "关联词": "conj"}


@dataclass(frozen=True)
class MarkedError:
    """An error as the essay page lists it; ``inline`` says whether it is marked in the text."""

    number: int
    type: str
    css: str
    original: str
    suggestion: str
    explanation: str
    inline: bool


def type_class(error_type: str) -> str:
    return TYPE_CLASSES.get(error_type, "other")


def _tooltip(error: ErrorAnnotation) -> str:
    tip = f"{error.type}：{error.original}"
    if error.suggestion:
        tip += f" → {error.suggestion}"
    if error.explanation:
        tip += f"（{error.explanation}）"
    return tip


def highlight(text: str, errors: Sequence[ErrorAnnotation]) -> tuple[Markup, list[MarkedError]]:
    """The essay as markup with ``<mark>`` around each error span, and the numbered list of all errors."""
    ordered = sorted(errors, key=lambda e: (e.start_offset, e.end_offset))
    pieces: list[Markup] = []
    listed: list[MarkedError] = []
    cursor = 0
    for number, error in enumerate(ordered, start=1):
        start, end = error.start_offset, error.end_offset
        inline = 0 <= start < end <= len(text) and start >= cursor
        css = type_class(error.type)
        listed.append(MarkedError(number, error.type, css, error.original, error.suggestion, error.explanation, inline))
        if not inline:
            continue
        pieces.append(escape(text[cursor:start]))
        pieces.append(
            Markup('<mark class="err err-{css}" id="m{n}" title="{tip}"><a href="#e{n}">{span}</a>'
                   '<sup>{n}</sup></mark>').format(css=css, n=number, tip=_tooltip(error), span=text[start:end])
        )
        cursor = end
    pieces.append(escape(text[cursor:]))
    return Markup("").join(pieces), listed
