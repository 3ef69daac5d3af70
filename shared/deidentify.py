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
from functools import lru_cache
from typing import Any

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


# 小/老/阿 + a surname that is an ordinary word, not a nickname (counted in real essays: 老师, 小时, 小康 …).
_NICKNAME_WORDS = """
老师 小时 小平 小路 小康 小花 小公 小和 阿房 老祖 小石 老庄 小成 小利 小房 小龙 老母 小幸 小白 小米 小段 小海
小车 老时 老都 小马 小区 老路 小都 阿毛 老农 阿莫 小钱 小单 小农 老翁 小于 小南 小银 小曲 小包 小门 小相 小来
小鹿 老单 小商 老来 小羊 老战 小毛 小文 小信 小满 小祖 小官 小费 阿那 小玉 小但 老成 小山 小云 小河 小江 老乡
老家 小学 小说 老年 小人 老人 小雨 小草 小树 老百 小童 老少 阿谀 阿姨 阿公 阿婆 小姐 老板 小宁 小安 老安 小乐
老乐 小巧 小强 老强 小华 老花 老实 老街 老屋 老井 老树 老牛 小牛 老兵 小兵 老将 小将 小燕 小溪 小桥 老汉 小楼
小院 小巷 老巷 小桂 小麦 小舟 老戏 小梅 小蓝 小池 小计 老计 小丰 老丰 小冷
"""
NICKNAME_WORDS = frozenset(_NICKNAME_WORDS.split())
_NAME_SEP = r"[ \u3000·・•]*"
_PINYIN_SEP = r"[ \u3000\-'’·.]{0,2}"
_NAME_TITLES = ("同学", "同志")


@lru_cache(maxsize=1)
def _converters() -> tuple[Any, ...]:
    from opencc_purepy import OpenCC

    return tuple(OpenCC(config) for config in ("s2t", "s2tw", "s2hk", "t2s"))


@lru_cache(maxsize=4096)
def char_variants(char: str) -> frozenset[str]:
    """The character and its simplified/traditional counterparts (钟 → 鍾/鐘, 晓 ↔ 曉)."""
    return frozenset({char} | {converter.convert(char) for converter in _converters()} - {""})


@lru_cache(maxsize=4096)
def _syllables(char: str) -> tuple[str, ...]:
    from pypinyin import Style, pinyin

    plain = pinyin(char, style=Style.NORMAL, heteronym=True, errors="ignore")
    marked = pinyin(char, style=Style.TONE, heteronym=True, errors="ignore")  # wáng, xiǎo: written with tone marks
    if not plain:
        return ()
    return tuple(sorted({reading.replace("ü", "v") for reading in plain[0]} | set(marked[0] if marked else ())))


def _char_class(char: str) -> str:
    variants = sorted(char_variants(char))
    return re.escape(variants[0]) if len(variants) == 1 else "[" + "".join(map(re.escape, variants)) + "]"


def _hanzi(chars: str, sep: str = "") -> str:
    return sep.join(_char_class(char) for char in chars)


def _pinyin(chars: str) -> str | None:
    """Pinyin of ``chars`` syllable by syllable, spaced or not; None where a character has no reading."""
    parts = []
    for char in chars:
        readings = _syllables(char)
        if not readings:
            return None
        alternatives = set(readings) | {reading.replace("v", spelling) for reading in readings for spelling in "uü"}
        parts.append("(?:" + "|".join(sorted(alternatives, key=lambda r: (-len(r), r))) + ")")
    return _PINYIN_SEP.join(parts)


@lru_cache(maxsize=4096)
def person_patterns(raw_name: str) -> tuple[tuple[str, int], ...]:
    """Regex forms of one roster name with the length each stands for: the full name (spaced or not, any mix of
    simplified and traditional characters), the given name of two or more characters, 小/老/阿 + surname and
    surname + 同学 (unless an ordinary word), and pinyin of the full name in either order and of a given name of
    two or more syllables, any case, spaced or not, with or without tone marks (lü as lv, lu or lü)."""
    name = "".join(raw_name.split())
    if len(name) < 2:
        return ()
    surname_len = 2 if name[:2] in COMPOUND_SURNAMES else 1
    surname, given = name[:surname_len], name[surname_len:]
    forms: dict[str, int] = {_hanzi(name, _NAME_SEP): len(name) + 1}
    if len(given) >= 2:
        forms[_hanzi(given)] = len(given)
    if given:
        nicknames = [prefix + surname for prefix in "小老阿"] + [surname + title for title in _NAME_TITLES]
        for nickname in nicknames:
            if nickname not in NICKNAME_WORDS:
                forms[_hanzi(nickname)] = len(nickname)
    if not re.fullmatch(r"[\u4e00-\u9fff]+", name):
        return tuple(forms.items())
    family, personal = _pinyin(surname), _pinyin(given)
    if family and personal:
        latin = {f"{family}{_PINYIN_SEP}{personal}": len(name), f"{personal}{_PINYIN_SEP}{family}": len(name)}
        if len(given) >= 2:
            latin[personal] = len(given)
        for pattern, length in latin.items():
            forms[f"(?i:(?<![a-z]){pattern}(?![a-z]))"] = length
    return tuple(forms.items())


class Deidentifier:
    """Replaces roster names, school names and contact/ID numbers with numbered placeholders.

    A roster name is also found spaced out (王 小明), in traditional characters (王曉明), as a nickname
    (小王, 老王, 阿王, 王同学) and in pinyin (Wang Xiaoming, wangxiaoming, Xiaoming Wang): see ``person_patterns``.
    """

    def __init__(self, person_names: Iterable[str], school_names: Iterable[str]) -> None:
        schools: set[str] = set()
        for raw in school_names:
            school = "".join(raw.split())
            if len(school) < 2:
                continue
            schools.add(school)
            schools.update(school_short_forms(school))
        # (pattern, length) for every form; the longest form wins where two could match at one place.
        forms: dict[str, int] = {re.escape(school): len(school) for school in schools}
        for raw in person_names:
            for pattern, length in person_patterns(raw):
                forms[pattern] = max(length, forms.get(pattern, 0))
        self._schools = frozenset(schools)
        alternatives = [pattern for _, pattern in _PATTERNS]
        if forms:
            ordered = sorted(forms, key=lambda pattern: (-forms[pattern], pattern))
            alternatives.append("|".join(ordered))
        self._regex = re.compile("|".join(f"({alt})" for alt in alternatives))

    def _kind(self, match: re.Match[str]) -> str:
        group = match.lastindex or 0
        if group <= len(_PATTERNS):
            return _PATTERNS[group - 1][0]
        return "学校" if match.group() in self._schools else "姓名"

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
