"""Detect essay text that tries to instruct the grader (prompt injection), and strip invisible characters.

Flags are advisory: they are shown to the teacher and can send an essay to review; they never change
a score by themselves. Patterns aim at text that addresses the grader, not at essays about exams.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from shared.textnorm import strip_invisible

logger = logging.getLogger(__name__)

_SPACING_RE = re.compile(r"[\s*_·•\-~～]+")
_GRADER = r"(?:阅卷|评卷|判卷|批卷|改卷|评分)(?:老师|教师|人|人员|员|专家|组|系统|模型|AI|助手)"
_SCORE = r"(?:满分|最高分|高分|一等(?!奖)|六十分|五十[五六七八九]分|[4-6]\d分(?![钟之]))"
_THIS_ESSAY = r"(?:本文|此文|该文|这篇(?:作文|文章)?|这份(?:作文|答卷|试卷)|我的作文|我这篇(?:作文|文章)?)"

# (flag label, pattern searched in text with spacing removed)
_CHINESE_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "要求忽略之前的指令",
        re.compile(
            r"(?:忽略|无视|忘记|忘掉|不要理会|不用理会|不必理会|跳过|覆盖)(?:掉)?(?:你)?"
            r"(?:以上|上面|上述|之前|此前|前面|先前|原有|原来|原先|所有|全部|一切|系统)的?"
            r"(?:所有|全部|一切)?的?(?:要求|指令|指示|规则|提示|提示词|评分标准|设定|命令|规定|限制)"
        ),
    ),
    (
        "索要分数",
        re.compile(
            rf"(?:请|务必|必须|一定要|应该|应当|直接|麻烦|你要|你得)(?:你)?(?:给|打|评|判)(?:我|{_THIS_ESSAY})?"
            rf"(?:打|评|判)?(?:个|为|成)?{_SCORE}"
            rf"|给(?:我|{_THIS_ESSAY})(?:打|评|判)?(?:个|为)?(?:满分|\d+分)(?![钟之数值])"
            rf"|{_THIS_ESSAY}(?:应该|应当|必须|理应)(?:得|获得|评为|判为|给)(?:满分|\d+分)"
        ),
    ),
    (
        "以阅卷者身份下指令",
        re.compile(
            rf"(?:你是|你现在是|你作为|作为|身为|假设你是|假如你是|扮演)[^。！？]{{0,12}}{_GRADER}"
            rf"[^。！？]{{0,20}}(?:必须|务必|应该|应当|一定要|请)"
        ),
    ),
    (
        "直接称呼阅卷者",
        re.compile(
            rf"(?:尊敬的|亲爱的){_GRADER}|{_GRADER}(?:您好|你好)"
            rf"|{_GRADER}[，,:！!]+(?:请|你|您|务必|必须|一定)"
        ),
    ),
    ("伪造系统提示", re.compile(r"【?系统(?:提示|指令|消息)】?:|#{2,}(?:系统|指令)")),
    ("伪造作文分隔符", re.compile(r"<<<|>>>|作文(?:开始|结束)>>")),
]
_ENGLISH_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "伪造系统提示",
        re.compile(
            r"<\|(?:im_start|im_end|endoftext|system|user|assistant)\|>|\[/?inst\]|<</?sys>>"
            r"|(?:^|\n)\s*(?:system|assistant)\s*[:：]|(?:^|\n)\s*#{2,}\s*(?:instruction|system)",
        ),
    ),
    (
        "要求忽略之前的指令（英文）",
        re.compile(
            r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
            r"(?:previous|prior|above|earlier|preceding|system|original)\s+(?:instructions?|prompts?|rules?|directions?)"
        ),
    ),
    (
        "索要分数（英文）",
        re.compile(
            r"\b(?:give|award|grade|score)\s+(?:this\s+essay|me|it)\s+(?:a\s+)?(?:full\s+marks|perfect|60|100)"
        ),
    ),
    (
        "包含评分结果格式的 JSON",
        re.compile(
            r"[{｛][^{}｛｝]{0,300}?[\"“”']?(?:score|total|band|grade|分数|得分|总分|等级|content|development)"
            r"[\"“”']?\s*[:：]\s*[\"“”']?\d",
        ),
    ),
]


def _excerpt(text: str, match: re.Match[str]) -> str:
    snippet = match.group().strip()
    return snippet if len(snippet) <= 30 else snippet[:29] + "…"


def detect_injection(text: str) -> list[str]:
    """Return Chinese flags (label：“excerpt”) for passages that address or instruct the grader."""
    folded = unicodedata.normalize("NFKC", strip_invisible(text))
    compact = _SPACING_RE.sub("", folded)
    lowered = folded.lower()
    flags: list[str] = []
    seen: set[str] = set()
    for rules, haystack in ((_CHINESE_RULES, compact), (_ENGLISH_RULES, lowered)):
        for label, pattern in rules:
            match = pattern.search(haystack)
            if match and label not in seen:
                seen.add(label)
                flags.append(f"{label}：“{_excerpt(haystack, match)}”")
    if flags:
        logger.info("injection flags: %s", flags)
    return flags
