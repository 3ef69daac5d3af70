"""Prompts and answer schemas of the teaching assistant (issue 20): 立意 angles for a 作文题, 素材 chosen among
retrieved library entries, and a 教案. Both sides use them: the worker to ask the model, the web and the tests to
check what is stored. Every string and list is bounded, so constrained decoding always finishes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from shared.prompts.material_library import THEMES, Material

PROMPT_VERSION = "teaching-v1"
MIN_ANGLES, MAX_ANGLES = 3, 5
MAX_PICKS = 4
RANK_NAMES = ("最稳妥", "稳妥", "适中", "进阶", "最大胆")


def _text(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def _list(items: dict[str, Any], low: int, high: int) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": low, "maxItems": high}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


ANGLE = _object({
    "thesis": _text(60),  # the one-line 立意
    "theme": {"type": "string", "enum": list(THEMES)},
    "keywords": _list(_text(10), 2, 5),
    "relation": _text(120),  # how it answers the material
    "off_topic": _text(120),  # the typical way to go off-topic (偏题) with it
})
ANGLES_SCHEMA: dict[str, Any] = _object({"angles": _list(ANGLE, MIN_ANGLES, MAX_ANGLES)})

LESSON_PROPERTIES: dict[str, Any] = {
    "objectives": _list(_text(80), 2, 4),  # 教学目标
    "key_points": _list(_text(80), 1, 3),  # 重点
    "difficulties": _list(_text(80), 1, 3),  # 难点
    "steps": _list(_object({"name": _text(20), "minutes": {"type": "integer", "minimum": 1, "maximum": 45},
                            "activity": _text(160)}), 3, 6),  # 教学过程
    "activities": _list(_text(120), 1, 3),  # 课堂活动
    "examples": _list(_object({"original": _text(100), "revised": _text(100), "note": _text(80)}), 1, 4),
    "homework": _list(_text(120), 1, 3),  # 作业
}
LESSON_SCHEMA: dict[str, Any] = _object(LESSON_PROPERTIES)  # a whole 教案, as stored and as a teacher edits it
LESSON_SECTIONS = (("objectives", "教学目标"), ("key_points", "教学重点"), ("difficulties", "教学难点"),
                   ("steps", "教学过程"), ("activities", "课堂活动"), ("examples", "例句与修改"), ("homework", "作业"))
# The model writes a 教案 in two answers, so that each fits the engine's answer budget (YUEJUAN_MAX_NEW_TOKENS,
# 1024 tokens by default) before the closing guard would cut its last sections to their shortest.
LESSON_PARTS: tuple[tuple[str, ...], ...] = (("objectives", "key_points", "difficulties", "steps"),
                                              ("activities", "examples", "homework"))


def lesson_part_schema(part: int) -> dict[str, Any]:
    return _object({key: LESSON_PROPERTIES[key] for key in LESSON_PARTS[part]})


def picks_schema(candidate_ids: Sequence[str]) -> dict[str, Any]:
    """Picks among ``candidate_ids`` only: the id is an enum of them, so no other entry can be named."""
    return _object({"picks": _list(_object({"id": {"type": "string", "enum": list(candidate_ids)},
                                            "usage": _text(120)}), 1, min(MAX_PICKS, len(candidate_ids)))})


def digest(*parts: object) -> str:
    """A cache key: sha256 of the parts as canonical JSON."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def analysis_key(prompt_text: str, rubric_ref: str, rubric_version: str) -> str:
    """The 立意 cache key: the prompt text (whitespace-normalised) under one rubric and one prompt version."""
    return digest(PROMPT_VERSION, " ".join(prompt_text.split()), rubric_ref, rubric_version)


SYSTEM = ("你是一位经验丰富的高中语文教师，正在帮助同事备课。只依据给出的材料作答，不编造名人名言、事例或出处。"
          "用简体中文回答，并严格按要求的 JSON 格式输出。")


def angle_messages(prompt_text: str, *, rubric_name: str) -> list[dict[str, str]]:
    themes = "、".join(THEMES)
    user = (
        f"下面是一道作文题（评分标准：{rubric_name}）。\n"
        f"【作文题】\n{prompt_text.strip()}\n\n"
        f"请给出 {MIN_ANGLES} 到 {MAX_ANGLES} 个立意角度，按从最稳妥到最大胆排列。每个角度写：\n"
        "thesis：一句话的中心论点（不超过 30 字）；theme：从这些主题中选最贴近的一个：" + themes + "；\n"
        "keywords：2 到 5 个关键词；relation：这个立意如何回应材料的核心（不超过 60 字）；"
        "off_topic：用这个立意时学生最常见的偏题方式（不超过 60 字）。"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def material_messages(prompt_text: str, angle: dict[str, Any], candidates: Sequence[Material]) -> list[dict[str, str]]:
    listing = "\n".join(
        f"- {entry.id}（{entry.kind_name}）{entry.title}：{entry.summary}"
        + (f"原文：{entry.text}" if entry.text else "") for entry in candidates
    )
    user = (
        f"【作文题】\n{prompt_text.strip()}\n\n【选定的立意】{angle.get('thesis', '')}\n"
        f"关键词：{'、'.join(angle.get('keywords') or [])}\n\n"
        f"【素材库检索结果】只能从下列条目中选择（写条目 id），选出最适合这个立意的 1 到 {MAX_PICKS} 条，"
        "并用一两句话说明在文中怎样使用（放在哪一部分、支撑哪个分论点、怎样与立意挂钩）：\n" + listing
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def lesson_messages(goal: str, facts: dict[str, Any], part: int,
                    written: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Part ``part`` of a 40-minute lesson (``LESSON_PARTS``) for the goal and/or the class's statistics (already
    masked in ``facts``); the second part sees what the first ``written``, so the two agree."""
    parts = []
    if goal.strip():
        parts.append(f"【教学目标方向】{goal.strip()}")
    if facts.get("assignment_title"):
        parts.append(f"【本次作文】{facts['assignment_title']}（已批改 {facts.get('essays', 0)} 篇）\n"
                     f"【作文题】{facts.get('prompt_text', '')}")
    if facts.get("errors"):
        parts.append("【本班最常见的错误】" + "；".join(f"{e['type']} {e['count']} 处" for e in facts["errors"]))
    if facts.get("weakest"):
        weakest = facts["weakest"]
        parts.append(f"【最薄弱的维度】{weakest['name']}（全班得分率 {weakest['rate']:.0%}）")
    if facts.get("examples"):
        parts.append("【本班病例（已隐去姓名）】\n" + "\n".join(
            f"- {e['type']}：{e['sentence']}" + (f"（建议：{e['suggestion']}）" if e.get("suggestion") else "")
            for e in facts["examples"]))
    if written:
        steps = "；".join(f"{s['name']}（{s['minutes']} 分钟）" for s in written.get("steps") or [])
        parts.append(f"【已写好的前半部分】教学目标：{'；'.join(written.get('objectives') or [])}\n"
                     f"教学重点：{'；'.join(written.get('key_points') or [])}\n教学过程：{steps}")
    if part == 0:
        task = ("请为一节 40 分钟的作文讲评或专题课写教案的前半部分：教学目标、教学重点、教学难点，以及教学过程"
                "（每一步写名称、用时分钟数和师生活动，各步用时合计约 40 分钟）。每条简明扼要，不超过 60 字。")
    else:
        task = ("请为这节 40 分钟的课写教案的后半部分：课堂活动、例句与修改（优先使用上面的本班病例，写出原句、"
                "修改后的句子和修改说明）、课后作业。每条简明扼要，不超过 60 字。")
    user = "\n".join(parts) + "\n\n" + task
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
