"""Mask personal data in essay text before it reaches the model, and put it back for display.

Roster names, school names (with derived short forms), mainland phone numbers, ID-card numbers and
e-mail addresses become placeholders such as 【姓名1】; the same value always gets the same
placeholder within one text, and ``unmask`` restores the original exactly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

COMPOUND_SURNAMES = frozenset(
    ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文"]
    + ["司徒", "司空", "夏侯", "令狐", "端木", "独孤", "南宫", "西门", "轩辕", "呼延", "澹台"]
)
_ADMIN_PREFIX_RE = re.compile(r"^(?P<place>[\u4e00-\u9fff]{2,8}?)(?:省|市|自治区|特别行政区|区|县)")
_NUMBERED_SCHOOL_RE = re.compile(
    r"^(?P<place>.*?)第(?P<num>[一二三四五六七八九十百零〇\d]+)(?P<kind>中学|高级中学|小学)$"
)
GENERIC_SCHOOL_NAMES = frozenset(
    {"中学", "高中", "高级中学", "初级中学", "实验中学", "实验学校", "外国语学校"}
)
_AFFILIATED_RE = re.compile(r"^(?P<univ>.+?)大学附属(?P<kind>中学|小学)$")

_PATTERNS: list[tuple[str, str]] = [
    ("邮箱", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("身份证", r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"),
    ("电话", r"(?<![0-9])(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?![0-9])"),
    ("电话", r"(?<![0-9])(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3}[- ]?)\d{7,8}(?:-\d{1,4})?(?![0-9])"),
]
PLACEHOLDER_RE = re.compile(r"【(?:姓名|学校|电话|身份证|邮箱)\d+】")


@dataclass(frozen=True)
class MaskedText:
    """Masked text plus ``mapping`` from each placeholder to the original it replaced."""

    text: str
    mapping: dict[str, str] = field(default_factory=dict)


def given_name(full_name: str) -> str | None:
    """The given name of a Chinese full name when it has at least 2 characters, else None."""
    surname_len = 2 if full_name[:2] in COMPOUND_SURNAMES else 1
    given = full_name[surname_len:]
    return given if len(given) >= 2 else None


def school_short_forms(name: str) -> set[str]:
    """Common short forms of a school name: without 省/市/区 prefixes, 北京四中, 清华附中 …"""
    forms: set[str] = set()
    rest, place = name, ""
    while (prefix := _ADMIN_PREFIX_RE.match(rest)) and len(rest) - prefix.end() >= 2:
        place, rest = prefix.group("place"), rest[prefix.end() :]
        forms.add(place + rest)
        if rest not in GENERIC_SCHOOL_NAMES:
            forms.add(rest)
    numbered = _NUMBERED_SCHOOL_RE.match(rest)
    if numbered:
        short_place = place or numbered.group("place")
        if short_place:
            forms.add(f"{short_place}{numbered.group('num')}中")
            forms.add(f"{short_place}第{numbered.group('num')}{numbered.group('kind')}")
    affiliated = _AFFILIATED_RE.match(rest)
    if affiliated:
        suffix = "附中" if affiliated.group("kind") == "中学" else "附小"
        forms.add(f"{affiliated.group('univ')}大学{suffix}")
        forms.add(f"{affiliated.group('univ')}{suffix}")
    forms.discard(name)
    return {form for form in forms if len(form) >= 4}


class Deidentifier:
    """Replaces roster names, school names and contact/ID numbers with numbered placeholders."""

    def __init__(self, person_names: Iterable[str], school_names: Iterable[str]) -> None:
        literals: dict[str, str] = {}
        for raw in person_names:
            name = "".join(raw.split())
            if len(name) < 2:
                continue
            literals[name] = "姓名"
            given = given_name(name)
            if given:
                literals.setdefault(given, "姓名")
        for raw in school_names:
            school = "".join(raw.split())
            if len(school) < 2:
                continue
            literals[school] = "学校"
            for form in school_short_forms(school):
                literals.setdefault(form, "学校")
        self._kinds = literals
        alternatives = [pattern for _, pattern in _PATTERNS]
        if literals:
            ordered = sorted(literals, key=lambda value: (-len(value), value))
            alternatives.append("|".join(re.escape(value) for value in ordered))
        self._regex = re.compile("|".join(f"({alt})" for alt in alternatives))

    def _kind(self, match: re.Match[str]) -> str:
        group = match.lastindex or 0
        if group <= len(_PATTERNS):
            return _PATTERNS[group - 1][0]
        return self._kinds[match.group()]

    def mask(self, text: str) -> MaskedText:
        """Replace every personal value in ``text`` with its placeholder; same value, same placeholder."""
        by_value: dict[str, str] = {}
        counters: dict[str, int] = {}

        def replace(match: re.Match[str]) -> str:
            value = match.group()
            placeholder = by_value.get(value)
            if placeholder is None:
                kind = self._kind(match)
                counters[kind] = counters.get(kind, 0) + 1
                placeholder = f"【{kind}{counters[kind]}】"
                by_value[value] = placeholder
            return placeholder

        masked = self._regex.sub(replace, text)
        if by_value:
            logger.debug("masked %d personal values", len(by_value))
        return MaskedText(
            text=masked, mapping={placeholder: value for value, placeholder in by_value.items()}
        )


def unmask(text: str, mapping: dict[str, str]) -> str:
    """Put the originals back for the placeholders in ``mapping``; unknown placeholders stay as they are."""
    return PLACEHOLDER_RE.sub(lambda match: mapping.get(match.group(), match.group()), text)
