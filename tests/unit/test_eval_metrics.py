"""Evaluation metrics against values worked out by hand (in the comments), not against another library."""

from __future__ import annotations

import math

import pytest

from services.worker.evaluation.metrics import (
    adjacent_agreement,
    average_ranks,
    band_indices,
    binary_detection,
    confusion_matrix,
    edits_between,
    exact_agreement,
    mean_bias,
    pearson,
    quadratic_weighted_kappa,
    recall_by_type,
    sighan_char_level,
    sighan_sentence_level,
    spearman,
    summarize_agreement,
    within_tolerance_rate,
)

# A 3×3 example on the range 0..2.
TEACHER = [0, 0, 1, 1, 2, 2]
MODEL = [0, 1, 1, 2, 2, 2]


def test_confusion_matrix_rows_teacher_columns_model() -> None:
    # pairs (t, m): (0,0) (0,1) (1,1) (1,2) (2,2) (2,2)
    assert confusion_matrix(TEACHER, MODEL, low=0, high=2) == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    # every score of the range has its row and column, used or not
    assert confusion_matrix([11, 13], [13, 13], low=10, high=13) == [
        [0, 0, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 0],
        [0, 0, 0, 1],
    ]


def test_qwk_worked_3x3() -> None:
    # O = [[1,1,0],[0,1,1],[0,0,2]]; teacher counts (2,2,2), model counts (1,2,3), n = 6.
    # E[i][j] = 2·model[j]/6 = (1/3, 2/3, 1) in every row. Weights (i−j)² (the /(k−1)² cancels).
    # Σ w·O = 1·1 (0,1) + 1·1 (1,2) = 2.
    # Σ w·E: row 0 = 1·2/3 + 4·1 = 14/3; row 1 = 1·1/3 + 1·1 = 4/3; row 2 = 4·1/3 + 1·2/3 = 2 → 24/3 = 8.
    # κ = 1 − 2/8 = 0.75
    assert quadratic_weighted_kappa(TEACHER, MODEL, low=0, high=2) == pytest.approx(0.75)
    # a wider range adds only empty rows and columns: the same kappa
    assert quadratic_weighted_kappa(TEACHER, MODEL, low=0, high=5) == pytest.approx(0.75)


def test_qwk_perfect_and_reversed() -> None:
    assert quadratic_weighted_kappa([3, 7, 7, 12], [3, 7, 7, 12], low=0, high=20) == 1.0
    # [0,2] vs [2,0]: Σ w·O = 4 + 4 = 8; counts (1,0,1) each, E = 1/2 at (0,0),(0,2),(2,0),(2,2):
    # Σ w·E = 4·1/2 + 4·1/2 = 4; κ = 1 − 8/4 = −1
    assert quadratic_weighted_kappa([0, 2], [2, 0], low=0, high=2) == pytest.approx(-1.0)


def test_qwk_constant_rater_is_zero() -> None:
    # teacher (0,1,2) vs a model that always gives 1: O has (1,1,1) in column 1 and nothing elsewhere;
    # E[i][1] = teacher[i]·3/3 = 1 = O[i][1], so Σ w·O = Σ w·E = 2 and κ = 1 − 2/2 = 0.
    assert quadratic_weighted_kappa([0, 1, 2], [1, 1, 1], low=0, high=2) == 0.0
    assert quadratic_weighted_kappa([1, 1, 1], [0, 1, 2], low=0, high=2) == 0.0
    # both constant but different: O = E = 2 at (1,2); κ = 1 − 2/2 = 0
    assert quadratic_weighted_kappa([1, 1], [2, 2], low=0, high=2) == 0.0


def test_qwk_undefined_cases_are_none() -> None:
    # both raters give every essay the same single score: Σ w·E = 0, kappa undefined
    assert quadratic_weighted_kappa([1, 1, 1], [1, 1, 1], low=0, high=2) is None
    # a single essay scored alike is the same case; scored differently it is a constant pair (0)
    assert quadratic_weighted_kappa([5], [5], low=0, high=20) is None
    assert quadratic_weighted_kappa([5], [7], low=0, high=20) == 0.0
    assert quadratic_weighted_kappa([], [], low=0, high=20) is None
    assert quadratic_weighted_kappa([0, 0], [0, 0], low=0, high=0) is None


def test_score_checks() -> None:
    with pytest.raises(ValueError, match="pair one to one"):
        quadratic_weighted_kappa([1, 2], [1], low=0, high=2)
    with pytest.raises(ValueError, match=r"3 is not a whole score in 0\.\.2"):
        confusion_matrix([1, 3], [1, 1], low=0, high=2)
    with pytest.raises(ValueError, match="whole score"):
        confusion_matrix([1.5], [1], low=0, high=2)  # type: ignore[list-item]


def test_agreement_rates_and_bias() -> None:
    teacher = [10, 12, 15, 20]
    model = [10, 13, 18, 13]
    # differences model − teacher: 0, +1, +3, −7
    assert exact_agreement(teacher, model) == 0.25
    assert adjacent_agreement(teacher, model) == 0.5  # 0 and 1
    assert within_tolerance_rate(teacher, model, 3) == 0.75  # 0, 1, 3
    assert within_tolerance_rate(teacher, model, 6) == 0.75  # 7 is still outside
    assert within_tolerance_rate(teacher, model, 7) == 1.0
    assert mean_bias(teacher, model) == -0.75  # (0 + 1 + 3 − 7) / 4
    assert exact_agreement([], []) is None and mean_bias([], []) is None
    with pytest.raises(ValueError, match="negative"):
        within_tolerance_rate(teacher, model, -1)


def test_pearson_and_spearman_by_hand() -> None:
    # x = 1,2,3; y = 1,3,2; deviations (−1,0,1) and (−1,1,0): Σ dx·dy = 1, Σ dx² = Σ dy² = 2 → r = 1/2
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # ties take the average rank: x = 1,2,2,3 → ranks 1, 2.5, 2.5, 4; y = 1..4 → ranks 1..4.
    # deviations from 2.5: (−1.5, 0, 0, 1.5) and (−1.5, −.5, .5, 1.5):
    # Σ dx·dy = 4.5, Σ dx² = 4.5, Σ dy² = 5 → ρ = 4.5 / √22.5 = √0.9
    assert average_ranks([1, 2, 2, 3]) == [1.0, 2.5, 2.5, 4.0]
    assert average_ranks([30, 10, 20, 10, 10]) == [5.0, 2.0, 4.0, 2.0, 2.0]
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9))
    # a monotone but non-linear relation: ρ = 1, r < 1
    assert spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [1, 4, 9, 100]) < 1


def test_correlations_undefined() -> None:
    assert pearson([3, 3, 3], [1, 2, 3]) is None  # a constant rater
    assert spearman([1, 2, 3], [4, 4, 4]) is None
    assert pearson([1], [2]) is None
    assert pearson([], []) is None


def test_band_indices() -> None:
    national = [(16, 20), (11, 15), (6, 10), (0, 5)]  # 一等 … 四等, top band first
    assert band_indices([20, 16, 15, 6, 0], national) == [0, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="falls in 0 of the bands"):
        band_indices([21], national)
    # kappa over bands: the indices on the range 0..3
    teacher, model = band_indices([18, 12, 3], national), band_indices([17, 9, 4], national)
    assert (teacher, model) == ([0, 1, 3], [0, 2, 3])
    assert confusion_matrix(teacher, model, low=0, high=3)[1] == [0, 0, 1, 0]


def test_summarize_agreement() -> None:
    summary = summarize_agreement("total", TEACHER, MODEL, low=0, high=2, tolerance=1)
    assert (summary.name, summary.count, summary.tolerance) == ("total", 6, 1)
    assert summary.qwk == pytest.approx(0.75)
    assert summary.exact == pytest.approx(4 / 6)  # (0,0) (1,1) (2,2) (2,2)
    assert summary.adjacent == 1.0 and summary.within_tolerance == 1.0
    assert summary.mean_bias == pytest.approx(2 / 6)  # two essays +1
    assert (summary.teacher_mean, summary.model_mean) == (1.0, pytest.approx(8 / 6))
    assert summary.confusion == ((1, 1, 0), (0, 1, 1), (0, 0, 2))
    empty = summarize_agreement("content", [], [], low=0, high=20, tolerance=2)
    assert (empty.count, empty.qwk, empty.exact, empty.pearson, empty.teacher_mean) == (0, None, None, None, None)


# --- SIGHAN-15 ------------------------------------------------------------------------------------
# Seven hand-made sentences: (wrong, correct) pairs, and what a checker flagged (position → character).
SENTENCES = [
    ("我和朋唷去法国", "我和朋友去法国", {3: "友"}),  # 1 right place, right character
    ("对不气，我很忙", "对不起，我很忙", {2: "器"}),  # 2 right place, wrong character
    ("吃了早菜以后", "吃了早餐以后", {2: "饭"}),  # 3 wrong place
    ("你好！我是张爱文。", "你好！我是张爱文。", {1: "号"}),  # 4 correct sentence, false alarm
    ("我们到了。", "我们到了。", {}),  # 5 correct sentence, nothing flagged
    ("坐路差不多十分种", "走路差不多十分钟", {}),  # 6 two errors, none flagged
    ("他门去学效", "他们去学校", {1: "们"}),  # 7 two errors, one flagged (and corrected)
]
GOLD = [edits_between(wrong, correct) for wrong, correct, _ in SENTENCES]
FLAGGED = [flagged for _, _, flagged in SENTENCES]


def test_edits_between() -> None:
    assert GOLD[0] == {3: "友"}
    assert GOLD[5] == {0: "走", 7: "钟"}
    assert GOLD[3] == {}
    with pytest.raises(ValueError, match="not aligned"):
        edits_between("我们", "我们的")


def test_sighan_sentence_level_detection() -> None:
    counts = sighan_sentence_level(GOLD, FLAGGED)
    # TP: 1, 2 (positions equal the gold set); FN: 3, 6, 7; FP: 4 (the false alarm); TN: 5.
    # Sentences 3 and 7 were flagged but wrong (mismatched).
    assert (counts.tp, counts.fn, counts.fp, counts.tn, counts.mismatched) == (2, 3, 1, 1, 2)
    assert counts.precision == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert counts.recall == pytest.approx(2 / 5)  # 2 / (2 + 3)
    assert counts.f1 == pytest.approx(0.5)  # 2·2 / (4 + 1 + 3); = 2·(2/3)(2/5) / (2/3 + 2/5)
    assert counts.false_positive_rate == pytest.approx(1 / 2)  # 1 / (1 + 1)
    assert counts.accuracy == pytest.approx(3 / 7)
    # the ReaLiSe variant divides by every flagged sentence: 1, 2, 3, 4, 7
    assert counts.flagged_precision == pytest.approx(2 / 5)
    assert counts.flagged_f1 == pytest.approx(0.4)  # 4 / (4 + 1 + 2 + 3)


def test_sighan_sentence_level_correction() -> None:
    counts = sighan_sentence_level(GOLD, FLAGGED, correction=True)
    # TP: 1 only; sentence 2 now fails on its character: FN 2, 3, 6, 7; FP 4; TN 5
    assert (counts.tp, counts.fn, counts.fp, counts.tn, counts.mismatched) == (1, 4, 1, 1, 3)
    assert counts.precision == pytest.approx(1 / 2)
    assert counts.recall == pytest.approx(1 / 5)
    assert counts.f1 == pytest.approx(2 / 7)  # 2 / (2 + 1 + 4)
    assert counts.false_positive_rate == pytest.approx(1 / 2)
    assert counts.accuracy == pytest.approx(2 / 7)
    assert counts.flagged_precision == pytest.approx(1 / 5)


def test_sighan_char_level() -> None:
    # flagged positions: 1 + 1 + 1 + 1 + 0 + 0 + 1 = 5; gold positions: 1 + 1 + 1 + 0 + 0 + 2 + 2 = 7
    detection = sighan_char_level(GOLD, FLAGGED)
    # hits: sentence 1 (3), 2 (2), 7 (1); sentence 3 flagged 2 where the error is 3; 4 is a false alarm
    assert (detection.hits, detection.flagged, detection.gold) == (3, 5, 7)
    assert (detection.precision, detection.recall) == (pytest.approx(3 / 5), pytest.approx(3 / 7))
    assert detection.f1 == pytest.approx(0.5)  # 6 / (5 + 7)
    correction = sighan_char_level(GOLD, FLAGGED, correction=True)
    # sentence 2's 器 is not 起: hits 1 and 7 only
    assert correction.hits == 2
    assert (correction.precision, correction.recall) == (pytest.approx(2 / 5), pytest.approx(2 / 7))
    assert correction.f1 == pytest.approx(1 / 3)  # 4 / 12


def test_detection_edge_cases() -> None:
    # nothing flagged anywhere: precision undefined, recall 0, F1 0 (there were errors to find)
    silent = sighan_sentence_level([{0: "走"}, {}], [{}, {}])
    assert (silent.precision, silent.recall, silent.f1, silent.false_positive_rate) == (None, 0.0, 0.0, 0.0)
    # only correct sentences, nothing flagged: every rate but accuracy and FPR is undefined
    clean = sighan_sentence_level([{}, {}], [{}, {}])
    assert (clean.precision, clean.recall, clean.f1, clean.accuracy) == (None, None, None, 1.0)
    assert sighan_char_level([], []).f1 is None
    with pytest.raises(ValueError, match="pair one to one"):
        sighan_sentence_level([{}], [])


# --- FCGEC ----------------------------------------------------------------------------------------


def test_fcgec_detection_and_recall_by_type() -> None:
    gold = [True, True, False, False, True]
    flagged = [True, False, True, False, True]
    types: list[str | set[str]] = ["IWC", "CM", "", "", {"IWC", "CR"}]
    counts = binary_detection(gold, flagged)
    # TP: 1, 5; FN: 2; FP: 3; TN: 4
    assert (counts.tp, counts.fn, counts.fp, counts.tn) == (2, 1, 1, 1)
    assert (counts.precision, counts.recall, counts.f1) == (
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),  # 4 / (4 + 1 + 1)
    )
    by_type = recall_by_type(types, flagged)
    # IWC: sentences 1 and 5, both flagged; CM: sentence 2, missed; CR: sentence 5, flagged
    assert {name: (r.detected, r.total) for name, r in by_type.items()} == {
        "CM": (0, 1),
        "CR": (1, 1),
        "IWC": (2, 2),
    }
    assert (by_type["IWC"].recall, by_type["CM"].recall) == (1.0, 0.0)
