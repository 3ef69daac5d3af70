"""Deterministic analysis of one essay: normalised text, title, counts and mechanical punctuation errors.

Offsets in ``LocatedError`` are into ``Analysis.text`` (the normalised full text, title included), the
same text the teacher sees, so model findings and rule findings can be shown side by side.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.worker.injection import detect_injection
from services.worker.jobs import LocatedError
from shared.prompts.rubric import Rubric
from shared.textnorm import (
    CHAR_COUNT_RULES,
    CLOSING_QUOTES,
    clean_essay_text,
    count_chars,
    is_title_line,
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
# Dashes as students type them: — (U+2014), ― (U+2015), ─ (U+2500), － (U+FF0D), – (U+2013); -- for ASCII.
_DASHES = "—―─－–"
_PARAGRAPH_END_OK = "。！？…!?.：:；;" + _DASHES
# ——题记, —鲁迅, ― ―苏轼《定风波》: a run of dashes (spaces between them allowed), then up to 20 characters.
_ATTRIBUTION_RE = re.compile(rf"(?:[{_DASHES}]|--)[{_DASHES}\- ]*[^。！？…{_DASHES}\- ][^。！？…{_DASHES}]{{0,19}}$")
# 序次语 that open a numbered subheading or point: 一、 （一） (一) 1. 1、 1． ①
_ORDINAL_RE = re.compile(r"(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[）)]|\d+[.．、]|[①-⑳])\s*")
_HEADING_MARKS = "、·《》"  # marks an unnumbered subheading may hold: 读书、思考、成长  读书·思考
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
    ordinal = _ORDINAL_RE.match(text, start, end)
    for match in _HALFWIDTH_RE.finditer(text, start, end):
        mark = match.group()
        if ordinal and match.start() < ordinal.end():
            continue  # "1." opening a paragraph: the 下脚点 after an Arabic numeral is the standard form
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


def _is_subheading(paragraph: str) -> bool:
    """A heading inside the body reads like a title (``is_title_line``); without a 序次语 (一、 （一） 1.) it must
    also be short and hold no punctuation but 、·《》, or an unfinished sentence would pass for one."""
    ordinal = _ORDINAL_RE.match(paragraph)
    rest = paragraph[ordinal.end() :] if ordinal else paragraph
    if not is_title_line(rest):
        return False
    return bool(ordinal) or (
        len(rest) <= SUBHEADING_MAX_CHARS and not any(_is_punct(ch) and ch not in _HEADING_MARKS for ch in rest)
    )


def _paragraph_end_finding(text: str, start: int, end: int, kind: str) -> LocatedError | None:
    paragraph = text[start:end]
    if _ATTRIBUTION_RE.search(paragraph) or _is_subheading(paragraph):  # ——题记, ——鲁迅; 一、小标题
        return None
    trimmed = paragraph.rstrip(CLOSING_QUOTES)
    if not trimmed or trimmed[-1] in _PARAGRAPH_END_OK:
        return None
    last = end - 1
    return LocatedError(kind, last, end, text[last], text[last] + "。", "段末缺少句末标点", "rule:paragraph_end")


def _overlaps(finding: LocatedError, others: Iterable[LocatedError]) -> bool:
    return any(finding.start < other.end and other.start < finding.end for other in others)


def mechanical_errors(text: str, body_offset: int, kind: str = DEFAULT_PUNCT_TYPE) -> list[LocatedError]:
    """Rule-based punctuation findings for the body of ``text``, sorted by position.

    One mark is one error: where two rules find the same characters (a stray quote at a paragraph's end is
    both unpaired and "the paragraph's last mark"), the first rule's finding stands.
    """
    findings: list[LocatedError] = []
    for p_start, p_end in paragraph_spans(text[body_offset:]):
        start, end = body_offset + p_start, body_offset + p_end
        paragraph_end = _paragraph_end_finding(text, start, end, kind)
        for finding in (
            *_halfwidth_findings(text, start, end, kind),
            *_doubled_findings(text, start, end, kind),
            *_unbalanced_findings(text, start, end, kind),
            *([paragraph_end] if paragraph_end else []),
        ):
            if not _overlaps(finding, findings):
                findings.append(finding)
    return sorted(findings, key=lambda finding: (finding.start, finding.end))


def repeats_a_rule(finding: LocatedError, rule_findings: Iterable[LocatedError]) -> bool:
    """Whether a model finding is one the rules already made: same type, and the same characters, or a bare
    punctuation quote that a rule found (the model's lone "“" is located at the first “ of the essay, which
    need not be the stray one)."""
    same_type = [rule for rule in rule_findings if rule.type == finding.type]
    bare_mark = bool(finding.original) and all(_is_punct(ch) for ch in finding.original)
    return _overlaps(finding, same_type) or (bare_mark and any(rule.original == finding.original for rule in same_type))


def merge_findings(rule_findings: list[LocatedError], model_findings: Iterable[LocatedError]) -> list[LocatedError]:
    """The findings shown to the teacher, by position: the rules' and those of the model's that repeat none."""
    merged = [*rule_findings, *(f for f in model_findings if not repeats_a_rule(f, rule_findings))]
    return sorted(merged, key=lambda finding: (finding.start, finding.end))


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
