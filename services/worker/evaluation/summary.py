"""The figures of an evaluation, computed from its per-essay rows only (so they recompute from the stored rows).

Agreement per dimension and for the total against the teachers' points; for a set labelled in levels
(essays-acea) the model's points are mapped to the levels with cut-offs fitted on the other folds and the
figures are reported on each held-out fold only. Plus failures, speed, tokens, run-to-run and batch
differences and degenerate output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations_with_replacement
from typing import Any

from services.worker.evaluation.metrics import AgreementSummary, summarize_agreement
from services.worker.evaluation.sets import ACEA_LEVELS, TOTAL
from shared.confidence import BUCKETS, UNMEASURED, bucket
from shared.prompts.rubric import Rubric

# Which of the model's readings stands for which essays-acea trait (stated in every report of that set).
LEVEL_SOURCES = {TOTAL: TOTAL, "topic": "content", "language": "expression", "structure": "expression",
                 "logic": "development"}


@dataclass(frozen=True)
class LevelMapping:
    """Model points → level, with cut-offs fitted on the training folds of each held-out fold."""

    trait: str
    source: str  # the model's reading used: "total" or a dimension key
    cutoffs: dict[int, tuple[int, int]]  # held-out fold → (lowest Medium, lowest Great) points
    agreement: AgreementSummary  # over the held-out predictions, levels 0 (Bad) .. 2 (Great)


@dataclass(frozen=True)
class ConfidenceBucket:
    bucket: str
    essays: int
    within_tolerance: float | None  # of the total, against the teachers
    mean_abs_difference: float | None


@dataclass
class EvalSummary:
    essays: int
    graded: int
    failed: int
    schema_valid_rate: float | None
    failures: list[dict[str, str]]
    seconds_per_essay: float | None
    prompt_tokens_mean: float | None
    generated_tokens_mean: float | None
    rerun_differences: int | None
    rerun_parts: dict[str, int]
    batch_differences: int | None
    batch_parts: dict[str, int]
    degenerate: dict[str, int]
    agreement: list[AgreementSummary] = field(default_factory=list)
    levels: list[LevelMapping] = field(default_factory=list)
    # Agreement on the total per confidence bucket (shared.confidence): low confidence should predict disagreement.
    by_confidence: list[ConfidenceBucket] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> dict[str, Any]:
        """The one-line figures printed at the end of ``yuejuan eval``."""
        total = next((a for a in self.agreement if a.name == TOTAL), None)
        level = next((m.agreement for m in self.levels if m.trait == TOTAL), None)
        return {
            "essays": self.essays, "graded": self.graded, "failed": self.failed,
            "schema_valid_rate": self.schema_valid_rate,
            "qwk_total": total.qwk if total else None, "exact_total": total.exact if total else None,
            "within_tolerance_total": total.within_tolerance if total else None,
            "mean_bias_total": total.mean_bias if total else None,
            "qwk_levels_total": level.qwk if level else None,
            "rerun_differences": self.rerun_differences, "batch_differences": self.batch_differences,
            "degenerate": sum(self.degenerate.values()), "seconds_per_essay": self.seconds_per_essay,
        }


def summarize(rows: Sequence[dict[str, Any]], rubric: Rubric) -> EvalSummary:
    """``rows`` are ``EvalRow.as_json()`` records (as written to rows.jsonl)."""
    graded = [row for row in rows if row["model"]["failure"] is None]
    rerun = [row["rerun_differs"] for row in rows if row["rerun_differs"] is not None]
    alone = [row["alone_differs"] for row in rows if row["alone_differs"] is not None]
    return EvalSummary(
        essays=len(rows), graded=len(graded), failed=len(rows) - len(graded),
        schema_valid_rate=len(graded) / len(rows) if rows else None,
        failures=[{"key": row["key"], "reason": row["model"]["failure"]} for row in rows if row not in graded],
        seconds_per_essay=_mean([row["model"]["latency_ms"] / 1000 for row in graded]),
        prompt_tokens_mean=_mean([row["model"]["prompt_tokens"] for row in graded]),
        generated_tokens_mean=_mean([row["model"]["generated_tokens"] for row in graded]),
        rerun_differences=sum(1 for parts in rerun if parts) if rerun else None,
        rerun_parts=dict(Counter(part for parts in rerun for part in parts)),
        batch_differences=sum(1 for parts in alone if parts) if alone else None,
        batch_parts=dict(Counter(part for parts in alone for part in parts)),
        degenerate=dict(Counter(label for row in graded for label in row["degenerate"])),
        agreement=_agreement(graded, rubric),
        levels=_levels(graded, rubric),
        by_confidence=_by_confidence(graded, rubric),
    )


def model_reading(row: dict[str, Any], key: str) -> int:
    return int(row["model"]["total"] if key == TOTAL else row["model"]["scores"][key])


def _agreement(graded: Sequence[dict[str, Any]], rubric: Rubric) -> list[AgreementSummary]:
    summaries = []
    ranges = [(d.key, d.max, rubric.tolerance_for(d.key)) for d in rubric.dimensions]
    for key, high, tolerance in [*ranges, (TOTAL, rubric.total, rubric.tolerance_for())]:
        pairs = [(row["teacher_scores"][key], model_reading(row, key)) for row in graded
                 if key in row["teacher_scores"]]
        if pairs:
            summaries.append(summarize_agreement(key, [t for t, _ in pairs], [m for _, m in pairs], low=0,
                                                 high=high, tolerance=tolerance))
    return summaries


def _by_confidence(graded: Sequence[dict[str, Any]], rubric: Rubric) -> list[ConfidenceBucket]:
    """Total agreement per confidence bucket, lowest first, then the grades the engine measured no confidence for."""
    tolerance = rubric.tolerance_for()
    groups: dict[str, list[int]] = {name: [] for name, _low, _high in BUCKETS}
    groups[UNMEASURED] = []
    for row in graded:
        if TOTAL in row["teacher_scores"]:
            difference = abs(model_reading(row, TOTAL) - int(row["teacher_scores"][TOTAL]))
            groups[bucket(row["model"].get("confidence"))].append(difference)
    return [
        ConfidenceBucket(name, len(diffs), sum(d <= tolerance for d in diffs) / len(diffs) if diffs else None,
                         sum(diffs) / len(diffs) if diffs else None)
        for name, diffs in groups.items()
    ]


def _levels(graded: Sequence[dict[str, Any]], rubric: Rubric) -> list[LevelMapping]:
    labelled = [row for row in graded if row["teacher_levels"] and row["fold"] is not None]
    mappings = []
    dimension_keys = {d.key for d in rubric.dimensions}
    for trait, source in LEVEL_SOURCES.items():
        if source != TOTAL and source not in dimension_keys:
            continue
        rows = [row for row in labelled if trait in row["teacher_levels"]]
        folds = sorted({row["fold"] for row in rows})
        if len(folds) < 2:
            continue
        high = rubric.total if source == TOTAL else rubric.dimension(source).max
        cutoffs, teacher, model = {}, [], []
        for fold in folds:
            train = [(_level(row, trait), model_reading(row, source)) for row in rows if row["fold"] != fold]
            cut = fit_cutoffs(train, high)
            cutoffs[fold] = cut
            for row in rows:
                if row["fold"] == fold:
                    teacher.append(_level(row, trait))
                    model.append(apply_cutoffs(model_reading(row, source), cut))
        agreement = summarize_agreement(trait, teacher, model, low=0, high=len(ACEA_LEVELS) - 1, tolerance=0)
        mappings.append(LevelMapping(trait, source, cutoffs, agreement))
    return mappings


def fit_cutoffs(pairs: Sequence[tuple[int, int]], high: int) -> tuple[int, int]:
    """(lowest Medium, lowest Great) points that classify the most (level, points) pairs right; among equally good
    ones, those farthest from every training essay (the middle of the gap between two levels), then the lowest."""
    points = sorted({p for _, p in pairs})
    best: tuple[int, float, int, int] | None = None
    for medium, great in combinations_with_replacement(range(high + 2), 2):
        right = sum(1 for level, p in pairs if apply_cutoffs(p, (medium, great)) == level)
        margin = min((abs(p - (cut - 0.5)) for cut in (medium, great) for p in points), default=0.0)
        candidate = (-right, -margin, medium, great)
        if best is None or candidate < best:
            best = candidate
    assert best is not None
    return best[2], best[3]


def apply_cutoffs(points: int, cutoffs: tuple[int, int]) -> int:
    medium, great = cutoffs
    return 2 if points >= great else 1 if points >= medium else 0


def _level(row: dict[str, Any], trait: str) -> int:
    return ACEA_LEVELS.index(row["teacher_levels"][trait])


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
