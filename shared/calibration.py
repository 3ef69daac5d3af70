"""样卷 calibration: per dimension a monotone map from the model's score to the teachers', fitted on the essays a
teacher has marked blind (anchors and second reads), applied to the whole class as a separate calibrated score.

With few anchors (fewer than ``ISOTONIC_FROM``) the map is a shrunk linear one: the teachers' mean at the anchors'
model mean, with the least-squares slope pulled toward 1 by ``n / (n + SHRINK)`` and held to a sane range, so two
anchors move the scores by their mean difference and barely change the spread (no overshoot). From
``ISOTONIC_FROM`` anchors on, isotonic regression (pool-adjacent-violators) with linear interpolation between the
pooled points and flat beyond them. Pure functions; the maps are plain JSON stored on ``Calibration.maps``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.prompts.rubric import Rubric

ISOTONIC_FROM = 20
SHRINK = 2.0
MIN_SLOPE, MAX_SLOPE = 0.25, 4.0
METHOD_NAMES = {"linear": "收缩线性映射（样卷少于 20 篇）", "isotonic": "保序回归（样卷 20 篇及以上）"}


@dataclass(frozen=True)
class Anchor:
    """One essay both read by the model and marked blind by a teacher: per-dimension scores."""

    model: Mapping[str, int]
    teacher: Mapping[str, int]


def _linear(model: Sequence[int], teacher: Sequence[int]) -> dict[str, Any]:
    n = len(model)
    mean_m, mean_t = sum(model) / n, sum(teacher) / n
    spread = sum((m - mean_m) ** 2 for m in model)
    covariance = sum((m - mean_m) * (t - mean_t) for m, t in zip(model, teacher, strict=True))
    slope_ols = covariance / spread if spread else 1.0
    weight = n / (n + SHRINK)
    slope = min(max(weight * slope_ols + (1 - weight), MIN_SLOPE), MAX_SLOPE)
    return {"kind": "linear", "slope": slope, "intercept": mean_t - slope * mean_m}


def _isotonic(model: Sequence[int], teacher: Sequence[int]) -> dict[str, Any]:
    """Pool adjacent violators over the anchors sorted by model score (ties pooled first)."""
    by_score: dict[int, list[int]] = {}
    for m, t in zip(model, teacher, strict=True):
        by_score.setdefault(m, []).append(t)
    blocks: list[list[float]] = []  # [x sum, y sum, weight]
    for score in sorted(by_score):
        ys = by_score[score]
        blocks.append([score * len(ys), float(sum(ys)), float(len(ys))])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            for k in range(3):
                blocks[-1][k] += last[k]
    return {"kind": "isotonic", "x": [b[0] / b[2] for b in blocks], "y": [b[1] / b[2] for b in blocks]}


def fit(anchors: Sequence[Anchor], rubric: Rubric) -> tuple[str, dict[str, Any]]:
    """The method used and each dimension's map; raises ValueError with no anchors."""
    if not anchors:
        raise ValueError("calibration needs at least one anchor essay")
    method = "isotonic" if len(anchors) >= ISOTONIC_FROM else "linear"
    maps: dict[str, Any] = {}
    for dim in rubric.dimensions:
        model = [int(a.model[dim.key]) for a in anchors]
        teacher = [int(a.teacher[dim.key]) for a in anchors]
        maps[dim.key] = _isotonic(model, teacher) if method == "isotonic" else _linear(model, teacher)
    return method, maps


def _apply_one(spec: Mapping[str, Any], score: float) -> float:
    if spec["kind"] == "linear":
        return float(spec["slope"]) * score + float(spec["intercept"])
    xs, ys = spec["x"], spec["y"]
    if score <= xs[0]:
        return float(ys[0])
    if score >= xs[-1]:
        return float(ys[-1])
    for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
        if x0 <= score <= x1:
            return float(y0 + (y1 - y0) * (score - x0) / (x1 - x0)) if x1 > x0 else float(y1)
    return float(ys[-1])


def apply(maps: Mapping[str, Any], scores: Mapping[str, int], rubric: Rubric) -> dict[str, int]:
    """Calibrated whole-point scores per dimension, rounded half up and held within 0..max."""
    calibrated: dict[str, int] = {}
    for dim in rubric.dimensions:
        value = _apply_one(maps[dim.key], scores[dim.key]) if dim.key in maps else scores[dim.key]
        calibrated[dim.key] = min(max(int(value + 0.5) if value >= 0 else 0, 0), dim.max)
    return calibrated


def calibrated_total(maps: Mapping[str, Any], scores: Mapping[str, int], deductions: int, rubric: Rubric) -> int:
    """The calibrated dimension scores plus the grade's deductions (negative points), held within 0..total."""
    return min(max(sum(apply(maps, scores, rubric).values()) + deductions, 0), rubric.total)


def suggest_anchors(model_totals: Mapping[int, int], count: int = 8) -> list[int]:
    """Essay ids spread evenly over the model's score range (by rank): ``count`` of them, or all if fewer."""
    ranked = sorted(model_totals, key=lambda essay_id: (model_totals[essay_id], essay_id))
    if len(ranked) <= count:
        return ranked
    step = (len(ranked) - 1) / (count - 1)
    return [ranked[round(k * step)] for k in range(count)]
