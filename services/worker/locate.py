"""Map the model's quoted errors back to offsets in the essay text.

The model is asked to quote verbatim, but it often changes punctuation width or spacing; a quote is
matched exactly first, then after folding both sides. Quotes that cannot be found are dropped.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from typing import Any

from services.worker.jobs import LocatedError

logger = logging.getLogger(__name__)

_FOLD = str.maketrans(
    {
        **{chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)},
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "。": ".",
        "「": '"',
        "」": '"',
    }
)
_SURROUNDING_QUOTES = ("“”", '""', "‘’", "「」", "''")


def _fold(text: str) -> tuple[str, list[int]]:
    """Width-folded ``text`` without whitespace, and the original index of each kept character."""
    chars: list[str] = []
    positions: list[int] = []
    for index, ch in enumerate(text):
        if ch.isspace():
            continue
        chars.append(ch.translate(_FOLD))
        positions.append(index)
    return "".join(chars), positions


class _Locator:
    """Finds quotes in one text; remembers where each quote was last found so repeats move on."""

    def __init__(self, text: str, search_from: int) -> None:
        self.text = text
        self.search_from = search_from
        self.folded, self.positions = _fold(text)
        self.cursors: dict[str, int] = {}

    def find(self, quote: str) -> tuple[int, int] | None:
        cursor = self.cursors.get(quote, self.search_from)
        span = self._find_exact(quote, cursor) or self._find_folded(quote, cursor)
        if span is None:
            for pair in _SURROUNDING_QUOTES:
                if len(quote) > 2 and quote[0] == pair[0] and quote[-1] == pair[1]:
                    inner = quote[1:-1]
                    span = self._find_exact(inner, cursor) or self._find_folded(inner, cursor)
                    break
        if span is not None:
            self.cursors[quote] = span[1]
        return span

    def _find_exact(self, quote: str, cursor: int) -> tuple[int, int] | None:
        start = self.text.find(quote, cursor)
        return (start, start + len(quote)) if start >= 0 else None

    def _find_folded(self, quote: str, cursor: int) -> tuple[int, int] | None:
        folded_quote, _ = _fold(quote)
        if not folded_quote:
            return None
        found = self.folded.find(folded_quote, bisect.bisect_left(self.positions, cursor))
        if found < 0:
            return None
        return self.positions[found], self.positions[found + len(folded_quote) - 1] + 1


def locate_quotes(
    text: str, errors: Sequence[dict[str, Any]], *, search_from: int = 0
) -> tuple[list[LocatedError], int]:
    """Locate each error's ``original`` in ``text``; return the findings by position and the number dropped.

    A quote repeated in ``errors`` maps to its next occurrence after the previous match; when there is
    none left it is dropped like a quote that is not in the text at all.
    """
    locator = _Locator(text, search_from)
    findings: list[LocatedError] = []
    dropped = 0
    for error in errors:
        quote = str(error.get("original") or "")
        span = locator.find(quote) if quote.strip() else None
        if span is None:
            dropped += 1
            logger.debug("a quote of %d characters not found in the essay", len(quote))  # never essay text
            continue
        start, end = span
        findings.append(
            LocatedError(
                type=str(error.get("type", "")),
                start=start,
                end=end,
                original=text[start:end],
                suggestion=str(error.get("suggestion", "")),
                explanation=str(error.get("explanation", "")),
                origin="model",
            )
        )
    if dropped:
        logger.info("dropped %d of %d model errors whose quotes were not found", dropped, len(errors))
    findings.sort(key=lambda finding: (finding.start, finding.end))
    return findings, dropped
