"""样卷 calibration on synthetic readings: a model that marks 8 points high and squeezes the spread (0.6×)."""

from __future__ import annotations

import random

import pytest

from shared.calibration import ISOTONIC_FROM, Anchor, apply, calibrated_total, fit, suggest_anchors
from shared.prompts.rubric import load_rubric, within_tolerance

RUBRIC = load_rubric("gaokao-national")
DIMS = [dim.key for dim in RUBRIC.dimensions]


def _class(size: int, seed: int) -> list[Anchor]:
    """Teacher scores 4..19 per dimension; the model: 0.6×(t − 12) + 12 + 8/3 per dimension (+8 on the total of three
    dimensions), rounded, with ±1 noise on a third of the scores, held to 0..20."""
    rng = random.Random(seed)
    essays = []
    for _ in range(size):
        teacher = {key: rng.randint(4, 19) for key in DIMS}
        model = {key: min(max(round(0.6 * (t - 12) + 12 + 8 / 3 + rng.choice((-1, 0, 0, 1))), 0), 20)
                 for key, t in teacher.items()}
        essays.append(Anchor(model=model, teacher=teacher))
    return essays


def _within_rate(essays: list[Anchor], model_total) -> float:  # type: ignore[no-untyped-def]
    hits = sum(within_tolerance(model_total(e), sum(e.teacher.values()), RUBRIC) for e in essays)
    return hits / len(essays)


def _split(essays: list[Anchor], count: int) -> tuple[list[Anchor], list[Anchor]]:
    chosen = set(suggest_anchors({i: sum(e.model.values()) for i, e in enumerate(essays)}, count))
    return [essays[i] for i in sorted(chosen)], [e for i, e in enumerate(essays) if i not in chosen]


def _oracle_total(e: Anchor) -> int:
    """The synthetic truth's own inverse map: the best a per-dimension monotone calibration can do."""
    return sum(min(max(round((m - 12 - 8 / 3) / 0.6 + 12), 0), 20) for m in e.model.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_eight_anchors_raise_agreement_to_what_the_truth_allows(seed: int) -> None:
    essays = _class(48, seed)
    anchors, rest = _split(essays, 8)
    assert len(anchors) == 8 and len(rest) == 40
    method, maps = fit(anchors, RUBRIC)
    assert method == "linear"
    raw = _within_rate(rest, lambda e: sum(e.model.values()))
    calibrated = _within_rate(rest, lambda e: calibrated_total(maps, e.model, 0, RUBRIC))
    oracle = _within_rate(rest, _oracle_total)
    assert raw < 0.5, raw  # +8 on average is beyond the 6-point tolerance for most essays
    assert calibrated >= oracle - 0.1, (calibrated, oracle)
    assert calibrated > raw + 0.3, (raw, calibrated)
    bias_after = sum(calibrated_total(maps, e.model, 0, RUBRIC) - sum(e.teacher.values()) for e in rest) / len(rest)
    assert abs(bias_after) < 2.0, bias_after
    for key in DIMS:  # the spread is widened back toward the teachers' (slope > 1), not beyond 1/0.6 by much
        assert 1.1 < maps[key]["slope"] < 1.8, maps[key]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_two_anchors_do_not_overshoot(seed: int) -> None:
    essays = _class(40, seed)
    anchors, rest = _split(essays, 2)
    method, maps = fit(anchors, RUBRIC)
    assert method == "linear"
    raw_bias = sum(sum(e.model.values()) - sum(e.teacher.values()) for e in rest) / len(rest)
    after = [calibrated_total(maps, e.model, 0, RUBRIC) - sum(e.teacher.values()) for e in rest]
    bias_after = sum(after) / len(after)
    assert raw_bias > 6 and abs(bias_after) < raw_bias / 2, (raw_bias, bias_after)
    for key in DIMS:
        # two points fix a line exactly; shrinking toward 1 keeps the slope no steeper than the truth's 1/0.6
        assert 1.0 <= maps[key]["slope"] <= 1 / 0.6 + 0.05, maps[key]
    raw_error = sum(abs(sum(e.model.values()) - sum(e.teacher.values())) for e in rest)
    assert sum(abs(d) for d in after) < raw_error


def test_isotonic_from_enough_anchors_is_monotone_and_flat_outside() -> None:
    essays = _class(ISOTONIC_FROM + 10, 7)
    method, maps = fit(essays[:ISOTONIC_FROM], RUBRIC)
    assert method == "isotonic"
    for key in DIMS:
        values = [apply(maps, {k: s for k in DIMS}, RUBRIC)[key] for s in range(21)]
        assert values == sorted(values), values
        assert maps[key]["y"] == sorted(maps[key]["y"])


def test_isotonic_pools_violators_by_hand() -> None:
    anchors = [Anchor(model={d: m for d in DIMS}, teacher={d: t for d in DIMS})
               for m, t in [(10, 10), (11, 14), (12, 12), (13, 13)] * 5]
    _method, maps = fit(anchors, RUBRIC)
    spec = maps["content"]
    assert spec["kind"] == "isotonic"
    # 11→14 and 12→12 violate order and pool to 13 at x 11.5; 13→13 stays (13 ≥ 13)
    assert spec["x"] == [10, 11.5, 13] and spec["y"] == [10, 13, 13]
    assert apply(maps, {d: 5 for d in DIMS}, RUBRIC)["content"] == 10
    assert apply(maps, {d: 19 for d in DIMS}, RUBRIC)["content"] == 13


def test_suggested_anchors_spread_over_the_model_range() -> None:
    totals = {essay_id: score for essay_id, score in zip(range(100, 130), range(20, 50), strict=True)}
    chosen = suggest_anchors(totals, 8)
    assert len(chosen) == 8 and chosen[0] == 100 and chosen[-1] == 129
    assert [totals[c] for c in chosen] == sorted(totals[c] for c in chosen)
    assert suggest_anchors({1: 3, 2: 5}, 8) == [1, 2]


def test_no_anchors_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one anchor"):
        fit([], RUBRIC)
