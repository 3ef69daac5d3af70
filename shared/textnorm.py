"""Text normalisation, title detection, paragraph/sentence splitting and character counting for essays.

Everything downstream (offsets of errors, character counts, the prompt) works on ``normalize_text``'s
output, so the rules here decide what a "character" and a "paragraph" are.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Literal, get_args

logger = logging.getLogger(__name__)

CharCountRule = Literal["hanzi_alnum_punct", "hanzi_alnum"]
CHAR_COUNT_RULES: dict[str, str] = {
    "hanzi_alnum_punct": "汉字、字母、数字和标点（不含标题与空白）",
    "hanzi_alnum": "汉字、字母和数字（不含标题、标点与空白）",
}

SENTENCE_FINAL = "。！？…!?"
CLOSING_QUOTES = "”’」』）)》"
TITLE_MAX_CHARS = 25

_FULLWIDTH_ALNUM = {
    **{chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)},
    **{chr(c): chr(c - 0xFEE0) for c in range(0xFF21, 0xFF3B)},
    **{chr(c): chr(c - 0xFEE0) for c in range(0xFF41, 0xFF5B)},
}
_TRANSLATE = str.maketrans({**_FULLWIDTH_ALNUM, "\u3000": " "})
# Most essays contain none of those characters: finding that out costs a twentieth of translating.
_NEEDS_TRANSLATE_RE = re.compile("[" + "".join(map(chr, _TRANSLATE)) + "]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Zero-width characters, soft hyphens and bidi controls: they can hide or reorder text.
_INVISIBLE_RE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\u00ad]")
_LEADING_INDENT_RE = re.compile(r"^[ \t\u3000\u00a0]+", re.MULTILINE)
_TRAILING_SPACE_RE = re.compile(r"[ \t\u3000\u00a0]+$", re.MULTILINE)
_BLANK_RUN_RE = re.compile(r"\n{3,}")
_LABELLED_TITLE_RE = re.compile(r"^(?:题目|标题|题)\s*[:：]\s*(\S.*)$")
_BOOK_TITLE_RE = re.compile(r"^《([^《》]{1,40})》$")
_SENTENCE_END_RE = re.compile(rf"[{re.escape(SENTENCE_FINAL)}]+[{re.escape(CLOSING_QUOTES)}]*")


def strip_invisible(text: str) -> str:
    """Remove zero-width characters, soft hyphens and bidi controls that can hide or reorder text."""
    return _INVISIBLE_RE.sub("", text)


def clean_essay_text(raw: str) -> str:
    """The one cleaning rule for essay text, at upload and before grading: invisible characters removed, then
    ``normalize_text``."""
    return normalize_text(strip_invisible(raw))


def normalize_text(raw: str) -> str:
    """Return the canonical form of an essay: NFC, half-width letters/digits, LF lines, no indentation.

    Half-width punctuation is kept as written: using it in Chinese text is an error we report.
    Runs of blank lines collapse to one blank line; leading and trailing blank lines are dropped.
    """
    text = unicodedata.normalize("NFC", raw)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _CONTROL_RE.sub("", text)
    text = _LEADING_INDENT_RE.sub("", text)  # before the translation so 　 indentation is removed, not kept
    if _NEEDS_TRANSLATE_RE.search(text):
        text = text.translate(_TRANSLATE)
    text = _TRAILING_SPACE_RE.sub("", text)
    text = _BLANK_RUN_RE.sub("\n\n", text)
    return text.strip("\n")


def is_title_line(line: str) -> bool:
    """Short (≤ 25 characters), not ending like a clause (。，、；：), any ？！… only at the very end: how a title
    (and a subheading inside the body) reads."""
    if not line or len(line) > TITLE_MAX_CHARS or line[-1] in "。，,、；;：:":
        return False
    inner = line.rstrip("？！?!…" + CLOSING_QUOTES)
    return any(ch.isalnum() for ch in inner) and not any(ch in SENTENCE_FINAL for ch in inner)


def split_title(text: str) -> tuple[str | None, str]:
    """Split normalised text into (title, body); ``body`` is always a suffix of ``text``.

    A title is a first line labelled 题目：/标题：, a line that is just 《…》, or a line that ``is_title_line``
    (问句 titles are common). The first line is a title whether or not body text follows it: an essay of a
    title alone has an empty body (it is blank, not a one-sentence essay).
    """
    first_end = text.find("\n")
    first = (text if first_end < 0 else text[:first_end]).strip()
    rest_start = len(text) if first_end < 0 else first_end
    while rest_start < len(text) and text[rest_start] in "\n \t":
        rest_start += 1
    body = text[rest_start:] if text[rest_start:].strip() else ""

    labelled = _LABELLED_TITLE_RE.match(first)
    if labelled:
        return labelled.group(1).strip(), body
    book = _BOOK_TITLE_RE.match(first)
    if book:
        return book.group(1).strip(), body
    if is_title_line(first):
        return first, body
    return None, text


def paragraph_spans(body: str) -> list[tuple[int, int]]:
    """Return (start, end) offsets of the non-blank lines of ``body``, trimmed of surrounding spaces."""
    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"[^\n]+", body):
        line = match.group()
        stripped = line.strip()
        if not stripped:
            continue
        start = match.start() + (len(line) - len(line.lstrip()))
        spans.append((start, start + len(stripped)))
    return spans


def paragraphs(body: str) -> list[str]:
    """Return the paragraphs of ``body``: each non-blank line is one paragraph."""
    return [body[start:end] for start, end in paragraph_spans(body)]


def sentences(body: str) -> list[tuple[int, int]]:
    """Return (start, end) offsets of the sentences of ``body``.

    A sentence ends at a run of 。！？… (with any closing quotes or brackets after it) or at the end
    of its paragraph.
    """
    spans: list[tuple[int, int]] = []
    for p_start, p_end in paragraph_spans(body):
        cursor = p_start
        for match in _SENTENCE_END_RE.finditer(body, p_start, p_end):
            _append_sentence(body, spans, cursor, match.end())
            cursor = match.end()
        _append_sentence(body, spans, cursor, p_end)
    return spans


def _append_sentence(body: str, spans: list[tuple[int, int]], start: int, end: int) -> None:
    while start < end and body[start].isspace():
        start += 1
    if start >= end:
        return
    if all(unicodedata.category(ch).startswith("P") for ch in body[start:end]):
        return
    spans.append((start, end))


def is_counted(ch: str, rule: CharCountRule) -> bool:
    """Whether ``ch`` counts towards the essay length under ``rule``."""
    if ch.isspace():
        return False
    if ch.isalnum():
        return True
    return rule == "hanzi_alnum_punct" and unicodedata.category(ch).startswith("P")


class _KeepCounted(dict[int, int | None]):
    """A ``str.translate`` table that keeps counted characters and deletes the rest, filled on first sight:
    an essay repeats a few hundred distinct characters, so each is classified once per process."""

    def __init__(self, rule: CharCountRule) -> None:
        super().__init__()
        self.rule = rule

    def __missing__(self, codepoint: int) -> int | None:
        kept = codepoint if is_counted(chr(codepoint), self.rule) else None
        self[codepoint] = kept
        return kept


_COUNTED_ONLY = {rule: _KeepCounted(rule) for rule in get_args(CharCountRule)}


def count_chars(body: str, rule: CharCountRule) -> int:
    """Count the characters of ``body`` under a named rule (see ``CHAR_COUNT_RULES``)."""
    table = _COUNTED_ONLY.get(rule)
    if table is None:
        raise ValueError(f"unknown character-count rule {rule!r}; known: {', '.join(CHAR_COUNT_RULES)}")
    return len(body.translate(table))
