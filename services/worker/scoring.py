"""Compose the final score from the model's dimension scores and the rubric's deterministic rules.

Order: dimension scores → 发展等级 capped by the basic band → sum → deductions (title, length,
错别字, 标点) → caps (残篇 and other length caps, one or two sentences) → clamp to [0, total].
Bands are always derived from the scores; the model's own band is kept only for audit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from services.worker.analysis import Analysis, merge_findings
from services.worker.jobs import DeductionItem, LocatedError
from shared.prompts.rubric import Rubric

logger = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    """The composed score of one essay and every adjustment that led to it."""

    dimension_scores: dict[str, int]
    bands: dict[str, str]
    raw_total: int
    total: int
    deductions: list[DeductionItem] = field(default_factory=list)
    caps: list[str] = field(default_factory=list)
    model_scores: dict[str, int] = field(default_factory=dict)
    model_bands: dict[str, str] = field(default_factory=dict)
    used_model: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form for storage and audit."""
        return asdict(self)


def needs_model(analysis: Analysis) -> bool:
    """False when the rubric decides the score alone: a blank essay or one of one or two sentences."""
    return not (analysis.is_blank or analysis.few_sentences)


def _zero_result(rubric: Rubric, total: int, caps: list[str]) -> ScoreResult:
    scores = {dim.key: 0 for dim in rubric.dimensions}
    bands = {dim.key: dim.band_for(0).name for dim in rubric.dimensions}
    return ScoreResult(scores, bands, raw_total=0, total=total, caps=caps, used_model=False)


def _model_scores(rubric: Rubric, answer: dict[str, Any]) -> tuple[dict[str, int], dict[str, str]]:
    scores: dict[str, int] = {}
    bands: dict[str, str] = {}
    for dim in rubric.dimensions:
        if dim.key not in answer:
            raise ValueError(f"answer has no score for dimension {dim.key!r}")
        raw = int(answer[dim.key]["score"])
        scores[dim.key] = min(max(raw, 0), dim.max)
        if scores[dim.key] != raw:
            logger.warning("model score %s for %s clamped to %s", raw, dim.key, scores[dim.key])
        bands[dim.key] = str(answer[dim.key].get("band", ""))
    return scores, bands


def _cap_development(rubric: Rubric, scores: dict[str, int]) -> list[str]:
    notes: list[str] = []
    if not rubric.development_capped_by_basic:
        return notes
    rank = rubric.basic_rank(scores)
    basic_band = rubric.basic_dimensions[0].bands[rank].name
    for dim in rubric.development_dimensions:
        ceiling = dim.bands[rank].max
        if scores[dim.key] > ceiling:
            notes.append(f"{dim.name}不高于基础等级所在的{basic_band}：{scores[dim.key]} 分降为 {ceiling} 分")
            scores[dim.key] = ceiling
    return notes


def _length_deduction(rubric: Rubric, analysis: Analysis, skip: bool) -> DeductionItem | None:
    rule = rubric.deductions.length
    short = analysis.required_length - analysis.char_count
    if rule is None or skip or short <= 0:
        return None
    units = math.ceil(short / rule.per_chars) if rule.rounding == "ceil" else short // rule.per_chars
    points = units * rule.points
    if points <= 0:
        return None
    return DeductionItem(
        "length",
        -points,
        f"字数 {analysis.char_count}，少于 {analysis.required_length} 字要求 {short} 字"
        f"（每少 {rule.per_chars} 字扣 {rule.points} 分）",
    )


def _typo_deduction(rubric: Rubric, located_errors: list[LocatedError]) -> DeductionItem | None:
    rule = rubric.deductions.typo
    if rule is None:
        return None
    unique = list(dict.fromkeys(error.original for error in located_errors if error.type == rule.error_type))
    billable = max(0, len(unique) - rule.free_count)
    points = min(rule.max_points, billable * rule.points_each)
    if points <= 0:
        return None
    free = f"，前 {rule.free_count} 个不扣分" if rule.free_count else ""
    listed = "、".join(f"“{original}”" for original in unique)
    return DeductionItem(
        "typo",
        -points,
        f"{rule.error_type} {len(unique)} 个（重复不计{free}，最多扣 {rule.max_points} 分）：{listed}",
    )


def _punctuation_deduction(
    rubric: Rubric, analysis: Analysis, located_errors: list[LocatedError]
) -> DeductionItem | None:
    rule = rubric.deductions.punctuation
    if rule is None:
        return None
    # The errors the teacher is shown: a model finding that repeats a rule's counts once.
    shown = merge_findings(analysis.mechanical_errors, located_errors)
    count = sum(error.type == rule.error_type for error in shown)
    if count < rule.threshold or rule.points <= 0:
        return None
    return DeductionItem(
        "punctuation",
        -rule.points,
        f"{rule.error_type}错误 {count} 处（{rule.threshold} 处及以上扣 {rule.points} 分）",
    )


def compose_score(
    rubric: Rubric, analysis: Analysis, answer: dict[str, Any] | None, located_errors: list[LocatedError]
) -> ScoreResult:
    """Combine the model's answer with the rubric's rules; ``answer`` may be None when not ``needs_model``."""
    few = rubric.caps.few_sentences
    if analysis.is_blank:
        return _zero_result(rubric, 0, ["空白卷：0 分"])
    if answer is None:
        if not (analysis.few_sentences and few):
            raise ValueError(
                "a model answer is required: the essay is neither blank nor one or two sentences"
            )
        total = min(few.max_total, few.min_total + analysis.sentence_count - 1)
        return _zero_result(
            rubric, total, [f"只写了 {analysis.sentence_count} 句话：总分 {few.min_total}–{few.max_total} 分"]
        )

    scores, model_bands = _model_scores(rubric, answer)
    model_scores = dict(scores)
    caps = _cap_development(rubric, scores)
    bands = {dim.key: dim.band_for(scores[dim.key]).name for dim in rubric.dimensions}
    raw_total = sum(scores.values())

    length_caps = [cap for cap in rubric.caps.length if analysis.char_count < cap.below_chars]
    deductions: list[DeductionItem] = []
    if analysis.title is None and rubric.deductions.missing_title > 0:
        deductions.append(DeductionItem("missing_title", -rubric.deductions.missing_title, "缺少标题"))
    for item in (
        _length_deduction(rubric, analysis, skip=any(cap.skip_length_deduction for cap in length_caps)),
        _typo_deduction(rubric, located_errors),
        _punctuation_deduction(rubric, analysis, located_errors),
    ):
        if item is not None:
            deductions.append(item)
    total = raw_total + sum(item.points for item in deductions)

    for cap in sorted(length_caps, key=lambda cap: cap.max_total, reverse=True):
        caps.append(
            f"{cap.label}：正文 {analysis.char_count} 字，不足 {cap.below_chars} 字，"
            f"总分不超过 {cap.max_total} 分"
        )
        total = min(total, cap.max_total)
    if analysis.few_sentences and few:
        caps.append(f"只写了 {analysis.sentence_count} 句话：总分 {few.min_total}–{few.max_total} 分")
        total = min(max(total, few.min_total), few.max_total)
    total = min(max(total, 0), rubric.total)
    return ScoreResult(
        dimension_scores=scores,
        bands=bands,
        raw_total=raw_total,
        total=total,
        deductions=deductions,
        caps=caps,
        model_scores=model_scores,
        model_bands=model_bands,
        used_model=True,
    )
