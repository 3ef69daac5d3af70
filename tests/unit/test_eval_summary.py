"""eval's own reckoning: level cut-offs fitted on other folds, degenerate-output checks, figures from rows."""

from __future__ import annotations

from typing import Any

from services.worker.evaluation.quality import (
    ECHOES_INSTRUCTIONS,
    NOT_A_QUOTE,
    REPEATED,
    degenerate_output,
    longest_common_run,
    repeated_phrase,
)
from services.worker.evaluation.summary import apply_cutoffs, fit_cutoffs, summarize
from services.worker.jobs import EssayOutcome
from shared.prompts.render import render_system_message
from shared.prompts.rubric import load_rubric

RUBRIC = load_rubric("gaokao-national")


def test_cutoffs_classify_the_training_pairs_and_sit_nearest_the_middle() -> None:
    pairs = [(0, 10), (0, 12), (1, 30), (1, 32), (2, 50), (2, 55)]
    # Any Medium cut-off in 13..30 and Great in 33..50 classifies all six right. The margin is the smallest
    # distance from a boundary (cut-off − 0.5) to any essay's points: Medium 21 (boundary 20.5: 8.5 from 12,
    # 9.5 from 30) and Great 41 (boundary 40.5: 8.5 from 32) give 8.5, the most possible in both gaps; among the
    # cut-offs with that margin the lowest are kept.
    medium, great = fit_cutoffs(pairs, 60)
    assert [apply_cutoffs(points, (medium, great)) for _, points in pairs] == [0, 0, 1, 1, 2, 2]
    assert (medium, great) == (21, 41)


def _row(key: str, fold: int, level: str, total: int, teacher_total: int | None = None) -> dict[str, Any]:
    return {"key": key, "fold": fold, "teacher_levels": {"total": level},
            "teacher_scores": {} if teacher_total is None else {"total": teacher_total},
            "model": {"failure": None, "total": total, "scores": {}, "latency_ms": 1000, "prompt_tokens": 10,
                      "generated_tokens": 5},
            "rerun_differs": [], "alone_differs": ["scores"] if key == "b1" else [], "degenerate": []}


def test_levels_are_reported_on_held_out_folds_with_cutoffs_from_the_others() -> None:
    rows = [_row("a0", 0, "Bad", 10), _row("a1", 0, "Great", 50), _row("a2", 0, "Medium", 30),
            _row("b0", 1, "Bad", 12), _row("b1", 1, "Great", 52), _row("b2", 1, "Medium", 31)]
    summary = summarize(rows, RUBRIC)
    (mapping,) = [m for m in summary.levels if m.trait == "total"]
    assert set(mapping.cutoffs) == {0, 1} and mapping.agreement.count == 6
    assert mapping.agreement.exact == 1.0, "each fold's cut-offs, fitted on the other, classify it right"
    assert summary.batch_differences == 1 and summary.batch_parts == {"scores": 1}
    assert summary.rerun_differences == 0 and summary.seconds_per_essay == 1.0


def test_repeated_phrases_are_found_and_ordinary_prose_is_not() -> None:
    assert repeated_phrase("读书读书读书读书") == "读书"
    assert repeated_phrase("结构完整，结构完整，结构完整。") == "结构完整"
    assert repeated_phrase("本文立意明确，结构完整，语言流畅，论证有力。") is None
    assert longest_common_run("甲乙丙丁戊", "乙丙丁己") == 3


def test_degenerate_output_labels() -> None:
    essay = "读书的意义\n读书使人明智。腹有诗书气自华。"
    line = next(part for part in render_system_message(RUBRIC).splitlines() if len(part) > 30)
    outcome = EssayOutcome(essay_id=1, rubric_id=RUBRIC.id, rubric_version=RUBRIC.version, comment=line,
                           evidence={"content": ["读书使人明智", "这句话文中没有"], "expression": ["好好好好好好"]})
    assert degenerate_output(outcome, essay, "以读书为题") == [REPEATED, ECHOES_INSTRUCTIONS, NOT_A_QUOTE]
    fine = EssayOutcome(essay_id=2, rubric_id=RUBRIC.id, rubric_version=RUBRIC.version,
                        comment="立意明确，论据可以更充实。", evidence={"content": ["腹有诗书气自华"]})
    assert degenerate_output(fine, essay, "以读书为题") == []


def test_agreement_is_reported_per_confidence_bucket() -> None:
    def row(key: str, total: int, teacher: int, confidence: float | None) -> dict[str, Any]:
        base = _row(key, 0, "Bad", total, teacher)
        base["model"]["confidence"] = confidence
        return base

    rows = [row("a", 30, 40, 0.2), row("b", 30, 33, 0.3), row("c", 30, 31, 0.9), row("d", 30, 30, 0.95),
            row("e", 30, 37, 0.6), row("f", 30, 20, None)]
    buckets = {b.bucket: b for b in summarize(rows, RUBRIC).by_confidence}
    assert list(buckets) == ["低（<0.5）", "中（0.5–0.8）", "高（≥0.8）", "未测量"]
    assert (buckets["低（<0.5）"].essays, buckets["低（<0.5）"].within_tolerance) == (2, 0.5)
    assert buckets["低（<0.5）"].mean_abs_difference == 6.5
    assert (buckets["中（0.5–0.8）"].essays, buckets["中（0.5–0.8）"].within_tolerance) == (1, 0.0)
    assert (buckets["高（≥0.8）"].essays, buckets["高（≥0.8）"].within_tolerance) == (2, 1.0)
    assert (buckets["未测量"].essays, buckets["未测量"].mean_abs_difference) == (1, 10.0)
