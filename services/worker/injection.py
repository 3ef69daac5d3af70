"""Detect essay text that tries to instruct the grader (prompt injection), and strip invisible characters.

A flagged essay is graded with the suspected passages withheld from the model (``withhold_suspected``) and its
model score is withheld from teachers (待复核) until one confirms or overrides it. Patterns aim at text that
addresses the grader, not at essays about exams.
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
_OPEN = r"[【\[〔「『〖〘⟦<]"
_CLOSE = r"[】\]〕」』〗〙⟧>]"
_ANY8 = r"[^。！？!?\n]{0,8}"
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
            rf"|{_THIS_ESSAY}(?:应该|应当|必须|理应|应)(?:得|获得|评为|判为|给)(?:满分|\d+分)"
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
    (
        "伪造系统提示",
        re.compile(
            rf"{_OPEN}(?:最高|重要|紧急|新|特别)?(?:系统|管理员|开发者|助手|阅卷系统|评分系统|{_GRADER}|指令|提示词|评分指令)"
            rf"(?:提示词?|指令|消息|通知|设定|说明|命令|备注)?(?:更新|变更|补充)?{_CLOSE}"
            r"|(?<![\u4e00-\u9fff])系统(?:提示|指令|消息)[:：]|#{2,}(?:系统|指令)"
            r"|(?:以下|下面|接下来)(?:是|为)?(?:新的|最新的|真正的|最高)(?:评分)?(?:指令|要求|规则|评分标准)"
        ),
    ),
    (
        "伪造作文分隔符",
        re.compile(
            r"<<<|>>>|作文(?:开始|结束)>>|<\/?(?:essay|作文|text|document|data|input)>"
            rf"|{_OPEN}?(?:学生)?(?:作文|文章|正文)(?:到此|内容)?(?:结束|完毕|开始){_CLOSE}"
            r"|(?:={3,}|-{3,}|\*{3,})(?:作文|文章|正文|end|END)"
        ),
    ),
    (
        "声称已有权威评分",
        re.compile(
            rf"(?:老师|教师|专家|阅卷组|评卷组|阅卷人|评委|名师|特级教师|教研员|组长){_ANY8}"
            rf"(?:已|已经|均|一致|都|共同)(?:给|给予|给出|评|评为|评定|判|判为|打|认定|决定)(?:了|为|出)?{_ANY8}"
            rf"(?:满分|最高分|一类|一等|{_SCORE})"
            rf"|{_THIS_ESSAY}{_ANY8}(?:已|已经|曾)(?:被|由)?{_ANY8}(?:评为|评定为|认定为|判为|获得|获评|拿到|得到){_ANY8}"
            rf"(?:满分|最高分|一类|一等|{_SCORE})"
            rf"|(?:参考|建议|预期|应得|最终|标准)(?:得分|分数|评分|总分)[:：为是](?:[4-6]\d|100|满分)(?!\d)"
        ),
    ),
    (
        "恳请给高分",
        re.compile(
            rf"(?:恳请|烦请|敬请|还请|拜托|求求|跪求|求您|希望您|希望你|请您|望|恳求|劳烦)(?:您|你)?(?:们)?{_ANY8}"
            rf"(?:给|打|评|判|赐|予|给予)(?:我|{_THIS_ESSAY}|它|此卷)?(?:一个|个|为|以)?"
            rf"(?:满分|最高分|高分|一类|一等|{_SCORE})"
            rf"|(?:赐|予)(?:以|我|吾)?(?:满分|高分|一类|一等)"
            rf"|给(?:个|我|点)?(?:满分|高分)(?:呗|吧|啦|嘛|哈)"
        ),
    ),
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
        "伪造系统提示",
        re.compile(
            r"<\|?(?:start_header_id|end_header_id|eot_id|start_of_turn|end_of_turn|begin_of_text)\|?>|</?s>"
            r"|<\/?(?:system|assistant|user|instructions?)>|(?:^|\n)\s*(?:user|human|ai)\s*[:：]"
            r"|\[(?:system|admin|instruction|developer)(?:\s+(?:note|message|prompt|override))?\]"
        ),
    ),
    (
        "索要分数（英文）",
        re.compile(
            r"\b(?:give|award|grade|score|rate|mark)\s+(?:this\s+(?:essay|paper|text)|me|it)\s+(?:a\s+|an\s+)?"
            r"(?:full\s+marks|perfect|max(?:imum)?|top|highest|60|100|a\+)"
            r"|\b(?:already|previously)\s+(?:been\s+)?(?:graded|scored|awarded|given)\b[^.\n]{0,40}"
            r"(?:full\s+marks|perfect|60|100|highest)"
            r"|\bnew\s+instructions?\b|\byou\s+are\s+now\b|\boutput\s+(?:a\s+)?(?:score|total)\b"
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


# Sentence rules: an attack the patterns above miss still talks about its score. A sentence that speaks of grading,
# the grader or this essay together with a score (_GRADING_TALK with _SCORE_WORD or _TOP_SCORE) is flagged. A
# sentence that names a top score or deductions outright (_TOP_SCORE: 满分, 60分, 扣分) is not flagged — real
# essays do that (0.4% of them) — but is never shown to the model (``strip_score_talk``).
_SENTENCE_END = re.compile(r"[。！？!?\n；;]")
_TOP_SCORE = re.compile(
    r"满分|最高分|最高档|最高等级|一类(?:文|卷|上|下|作文)|一等(?:文|卷|上|下)|不要扣|(?<!折)不扣|别扣|免扣|扣分"
    r"|(?<![\d.])(?:60|六十|五十[五六七八九]|5[5-9])分|(?<![\d.])\d{1,2}/(?:20|60)(?!\d)"
    r"|full\s*marks|perfect\s*score|maximum|highest|\bpoints?\b|deduct|\bscore\b|\bgrade\b|\bmarks\b"
)
_GRADING_TALK = re.compile(
    r"评分|给分|打分|判分|得分|分数|总分|评语|总评|阅卷|评卷|判卷|改卷|考官|复评|评定|认定|判定|定为|评为|判为|系统"
    r"|(?<![a-z])ai(?![a-z])|人工智能|模型|助手|score|total|rubric|grader|examiner|override"
    rf"|{_THIS_ESSAY}|本卷|此卷|该卷|样卷|本篇|此篇"
)
_SCORE_WORD = re.compile(
    r"一类|一等(?!奖)|上第|高第|高分|优秀|(?<![\d.])(?:60|六十|100)(?![\d.%])|\bmax\b|\btop\b|\bbest\b"
)


def _grading_talk(sentence: str) -> bool:
    return any(_GRADING_TALK.search(form) and (_SCORE_WORD.search(form) or _TOP_SCORE.search(form))
               for form in (_SPACING_RE.sub("", sentence), sentence))


def _sentence_flags(folded: str) -> list[tuple[str, str]]:
    return [("对评分的要求或声称", sentence) for sentence in _SENTENCE_END.split(folded.lower())
            if _grading_talk(sentence)]


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
    for label, sentence in _sentence_flags(folded):
        if label not in seen:
            seen.add(label)
            snippet = sentence.strip()
            flags.append(f"{label}：“{snippet if len(snippet) <= 30 else snippet[:29] + '…'}”")
    if flags:
        # Labels only: the excerpts are essay text and may hold a name (logs outlive erasure).
        logger.info("injection flags: %s", [flag.partition("：")[0] for flag in flags])
    return flags


# Inside an essay already flagged, a sentence with any of these words may carry the instruction on (the line after
# a forged delimiter, the answer after a role tag): it is kept from the model too. Never applied to unflagged essays.
_SUSPECT_WORDS = re.compile(
    r"满分|最高分|高分|一类|一等|[1-9]\d?分(?![钟之])|评分|打分|给分|阅卷|评卷|判卷|系统|指令|提示词|管理员|总分|得分"
    r"|score|marks?\b|grade|total|points?\b|ignore|instruction|system|assistant|<\||\[/?inst|<</?sys",
    re.IGNORECASE,
)
_BRACED = re.compile(r"[{｛][^{}｛｝]{0,600}[}｝]|```[^`]{0,600}```")
_UNIT = re.compile(r"[^。！？!?\n]*(?:[。！？!?\n]|$)")


def withhold_suspected(text: str) -> tuple[str, int]:
    """``text`` without the passages that may instruct the grader, and how many were taken out.

    For an essay ``detect_injection`` flagged: brace blocks (fake JSON answers) go, then every sentence or line
    that is flagged on its own or that speaks of scores, graders or instructions. The model grades what is left,
    so an instruction that reached it can only have been missed by both."""
    if not text:
        return text, 0
    kept, removed = _BRACED.subn("", text)
    units = [unit for unit in _UNIT.findall(kept) if unit]
    survivors = []
    for unit in units:
        folded = unicodedata.normalize("NFKC", strip_invisible(unit))
        if unit.strip() and (_SUSPECT_WORDS.search(_SPACING_RE.sub("", folded)) or detect_injection(unit)):
            removed += 1
            # Keep the line break so paragraph counts and the title line stay where they were.
            if unit.endswith("\n"):
                survivors.append("\n")
            continue
        survivors.append(unit)
    return "".join(survivors), removed


def strip_score_talk(text: str) -> tuple[str, int]:
    """``text`` without the sentences that name a top score or deductions (满分, 60分, 扣分, full marks), and how
    many went: applied to every essay before the model sees it, flagged or not, so an instruction the flags miss
    cannot ask for its score in so many words. Line breaks stay where they were."""
    survivors = []
    removed = 0
    for unit in _UNIT.findall(text):
        if not unit:
            continue
        folded = unicodedata.normalize("NFKC", strip_invisible(unit)).lower()
        if unit.strip() and (_TOP_SCORE.search(folded) or _TOP_SCORE.search(_SPACING_RE.sub("", folded))):
            removed += 1
            survivors.append("\n" if unit.endswith("\n") else "")
            continue
        survivors.append(unit)
    return "".join(survivors), removed
