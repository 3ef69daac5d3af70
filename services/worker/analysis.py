"""Deterministic analysis of one essay: normalised text, title, counts and mechanical punctuation errors.

Offsets in ``LocatedError`` are into ``Analysis.text`` (the normalised full text, title included), the
same text the teacher sees, so model findings and rule findings can be shown side by side.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

from services.worker.injection import detect_injection
from services.worker.jobs import LocatedError
from shared.prompts.rubric import Rubric
from shared.textnorm import (
    CHAR_COUNT_RULES,
    CLOSING_QUOTES,
    clean_essay_text,
    count_chars,
    paragraph_spans,
    sentences,
    split_title,
)

logger = logging.getLogger(__name__)

HALFWIDTH_TO_FULLWIDTH = {",": "，", ".": "。", "?": "？", "!": "！", ";": "；", ":": "："}
PAIRS = {"“": "”", "《": "》", "（": "）", "「": "」"}
_CLOSERS = {close: open_ for open_, close in PAIRS.items()}
_DOUBLED_RE = re.compile(r"[，、。；：]{2,}")
_HALFWIDTH_RE = re.compile(r'\.{2,}|[,.?!;:"]')
_HALFWIDTH_MARKS = ',.?!;:"'
_PARAGRAPH_END_OK = "。！？…!?.—：:；;"
_ATTRIBUTION_RE = re.compile(r"(?:——|--+)[^。！？…—\-]{1,12}$")
SUBHEADING_MAX_CHARS = 15
DEFAULT_PUNCT_TYPE = "标点"


@dataclass
class Analysis:
    """Everything about an essay that does not need the model."""

    text: str
    title: str | None
    body: str
    body_offset: int
    char_count: int
    char_count_rule: str
    required_length: int
    paragraph_count: int
    sentence_count: int
    few_sentences: bool
    mechanical_errors: list[LocatedError] = field(default_factory=list)
    injection_flags: list[str] = field(default_factory=list)

    @property
    def is_blank(self) -> bool:
        """No letters, digits or hanzi in the body (a title alone, or only punctuation, is blank)."""
        return not any(ch.isalnum() for ch in self.body)

    def facts(self) -> dict[str, object]:
        """The deterministic figures shown to the model and the teacher, with Chinese labels."""
        return {
            "正文字数": self.char_count,
            "计数规则": CHAR_COUNT_RULES.get(self.char_count_rule, self.char_count_rule),
            "段落数": self.paragraph_count,
            "句子数": self.sentence_count,
            "有标题": self.title is not None,
        }


def _is_cjk(ch: str) -> bool:
    if not ch:
        return False
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2FFFF
        or 0x3000 <= code <= 0x303F
        or 0xFF01 <= code <= 0xFF0F
        or 0xFF1A <= code <= 0xFF20
        or ch in "“”‘’…—·"
    )


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _neighbour(text: str, index: int, step: int, lo: int, hi: int) -> str:
    """The nearest character in direction ``step`` that is neither a space nor half-width punctuation."""
    index += step
    while lo <= index < hi and (text[index] == " " or text[index] in _HALFWIDTH_MARKS):
        index += step
    return text[index] if lo <= index < hi else ""


def _halfwidth_findings(text: str, start: int, end: int, kind: str) -> list[LocatedError]:
    findings: list[LocatedError] = []
    quote_count = 0
    for match in _HALFWIDTH_RE.finditer(text, start, end):
        mark = match.group()
        prev = _neighbour(text, match.start(), -1, start, end)
        nxt = _neighbour(text, match.end() - 1, 1, start, end)
        in_chinese = _is_cjk(prev) or _is_cjk(nxt)
        raw_prev = text[match.start() - 1] if match.start() > start else ""
        abbreviation = mark == "." and raw_prev.isascii() and raw_prev.isalpha()  # U.S.A. / Mr.
        if mark == '"':
            quote_count += 1
        if not in_chinese or abbreviation:
            continue
        if mark == '"':
            suggestion = "“" if quote_count % 2 else "”"
        elif len(mark) > 1:
            suggestion = "……"
        else:
            suggestion = HALFWIDTH_TO_FULLWIDTH[mark]
        findings.append(
            LocatedError(
                kind,
                match.start(),
                match.end(),
                mark,
                suggestion,
                f"中文行文中误用半角“{mark}”，应为“{suggestion}”",
                "rule:halfwidth_punct",
            )
        )
    return findings


def _doubled_findings(text: str, start: int, end: int, kind: str) -> list[LocatedError]:
    findings = []
    for match in _DOUBLED_RE.finditer(text, start, end):
        run = match.group()
        suggestion = "。" if "。" in run else run[0]
        if set(run) == {"。"} and len(run) >= 3:
            suggestion = "……"
        findings.append(
            LocatedError(
                kind,
                match.start(),
                match.end(),
                run,
                suggestion,
                f"标点“{run}”重复使用",
                "rule:doubled_punct",
            )
        )
    return findings


def _unbalanced_findings(text: str, start: int, end: int, kind: str) -> list[LocatedError]:
    findings = []
    stacks: dict[str, list[int]] = {open_: [] for open_ in PAIRS}
    for index in range(start, end):
        ch = text[index]
        if ch in PAIRS:
            stacks[ch].append(index)
        elif ch in _CLOSERS:
            stack = stacks[_CLOSERS[ch]]
            if stack:
                stack.pop()
            else:
                findings.append(
                    LocatedError(
                        kind,
                        index,
                        index + 1,
                        ch,
                        _CLOSERS[ch] + ch,
                        f"“{ch}”缺少与之配对的“{_CLOSERS[ch]}”",
                        "rule:unbalanced_pair",
                    )
                )
    for open_, stack in stacks.items():
        for index in stack:
            findings.append(
                LocatedError(
                    kind,
                    index,
                    index + 1,
                    open_,
                    open_ + PAIRS[open_],
                    f"“{open_}”缺少与之配对的“{PAIRS[open_]}”",
                    "rule:unbalanced_pair",
                )
            )
    return findings


def _paragraph_end_finding(text: str, start: int, end: int, kind: str) -> LocatedError | None:
    paragraph = text[start:end]
    if _ATTRIBUTION_RE.search(paragraph):  # ——题记, ——鲁迅
        return None
    if len(paragraph) <= SUBHEADING_MAX_CHARS and not any(_is_punct(ch) for ch in paragraph):
        return None  # a subheading inside the body
    trimmed = paragraph.rstrip(CLOSING_QUOTES)
    if not trimmed or trimmed[-1] in _PARAGRAPH_END_OK:
        return None
    last = end - 1
    return LocatedError(kind, last, end, text[last], text[last] + "。", "段末缺少句末标点", "rule:paragraph_end")


def mechanical_errors(text: str, body_offset: int, kind: str = DEFAULT_PUNCT_TYPE) -> list[LocatedError]:
    """Rule-based punctuation findings for the body of ``text``, sorted by position."""
    findings: list[LocatedError] = []
    for p_start, p_end in paragraph_spans(text[body_offset:]):
        start, end = body_offset + p_start, body_offset + p_end
        findings += _halfwidth_findings(text, start, end, kind)
        findings += _doubled_findings(text, start, end, kind)
        findings += _unbalanced_findings(text, start, end, kind)
        paragraph_end = _paragraph_end_finding(text, start, end, kind)
        if paragraph_end:
            findings.append(paragraph_end)
    return sorted(findings, key=lambda finding: (finding.start, finding.end))


def analyse(raw_text: str, rubric: Rubric, required_length: int | None = None) -> Analysis:
    """Normalise ``raw_text`` and compute everything the score needs that the model does not decide."""
    text = clean_essay_text(raw_text)
    title, body = split_title(text)
    body_offset = len(text) - len(body)
    char_count = count_chars(body, rubric.char_count_rule)
    sentence_count = len(sentences(body))
    few = rubric.caps.few_sentences
    punct_type = (
        rubric.deductions.punctuation.error_type if rubric.deductions.punctuation else DEFAULT_PUNCT_TYPE
    )
    analysis = Analysis(
        text=text,
        title=title,
        body=body,
        body_offset=body_offset,
        char_count=char_count,
        char_count_rule=rubric.char_count_rule,
        required_length=required_length or rubric.required_length,
        paragraph_count=len(paragraph_spans(body)),
        sentence_count=sentence_count,
        few_sentences=bool(
            few and 0 < sentence_count <= few.max_sentences and 0 < char_count < few.below_chars
        ),
        mechanical_errors=mechanical_errors(text, body_offset, punct_type),
        injection_flags=detect_injection(text),
    )
    logger.debug(
        "analysed essay: %d chars, %d paragraphs, %d mechanical errors",
        char_count,
        analysis.paragraph_count,
        len(analysis.mechanical_errors),
    )
    return analysis
