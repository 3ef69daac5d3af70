"""The figures of ``yuejuan eval``: agreement between model and teacher scores, and error-detection scores.

Pure functions over plain lists. Scores are whole points on a known inclusive range ``low..high``; every
function that compares two raters takes ``(teacher, model)`` in that order (bias is model − teacher).
Lists of different lengths or a score outside the range are the caller's mistake and raise ValueError. A
figure that the data leave undefined (no items, a correlation with a constant rater, a kappa whose chance
disagreement is zero, a precision with nothing flagged) is None, never NaN and never a crash.

Error detection:

- SIGHAN-15 sentence level follows the bake-off (Tseng et al., 2015, "Introduction to SIGHAN 2015 Bake-off
  for Chinese Spelling Check", section 4). Each sentence falls in exactly one cell: a sentence with errors
  is a true positive when the set of flagged positions equals the gold set exactly (detection) and, for
  correction, every corrected character matches too, otherwise a false negative; a correct sentence with
  anything flagged is a false positive, otherwise a true negative. Precision = TP/(TP+FP), recall =
  TP/(TP+FN), false-positive rate = FP/(FP+TN), accuracy = (TP+TN)/all. Later papers (ReaLiSe, 2021, and
  the CCL2022-CLTC scripts) divide precision by every sentence flagged, which also charges a sentence with
  errors flagged at the wrong places; ``flagged_precision``/``flagged_f1`` give that variant.
- Character level (not scored by the bake-off itself; the convention of SpellGCN/ReaLiSe) counts error
  positions over all sentences: detection hits are flagged positions that are gold positions; correction
  hits are those whose corrected character also matches. Precision divides by all flagged positions,
  recall by all gold positions.
- FCGEC: sentence-level 病句 detection (the sentence has an error or not) and, per gold error type, the
  share of that type's sentences flagged as 病句.

F1 is 2·TP/(2·TP+FP+FN), which equals 2PR/(P+R) where both are defined and is 0 (not undefined) when
there were errors to find and none was found.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from shared.rater_agreement import (  # noqa: F401 - re-exported: the metrics of eval live in one namespace
    _check_scores,
    _ratio,
    _same_length,
    adjacent_agreement,
    confusion_matrix,
    exact_agreement,
    mean_bias,
    quadratic_weighted_kappa,
    within_tolerance_rate,
)

# An error position in a sentence (0-based character index) → the corrected character.
Edits = Mapping[int, str]


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, smallest first; tied values share the average of the ranks they span (1, 2.5, 2.5, 4)."""
    order = sorted(range(len(values)), key=lambda index: values[index])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's correlation; None for fewer than two pairs or when either side is constant."""
    _same_length(x, y, "correlation")
    if len(x) < 2:
        return None
    mean_x, mean_y = math.fsum(x) / len(x), math.fsum(y) / len(y)
    dx = [value - mean_x for value in x]
    dy = [value - mean_y for value in y]
    spread = math.sqrt(math.fsum(d * d for d in dx) * math.fsum(d * d for d in dy))
    if spread == 0:
        return None
    return math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / spread


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation: Pearson's over average ranks (ties share their mean rank)."""
    _same_length(x, y, "correlation")
    return pearson(average_ranks(x), average_ranks(y))


def band_indices(scores: Sequence[int], bands: Sequence[tuple[int, int]]) -> list[int]:
    """The index of the inclusive (min, max) band each score falls in, in the order the bands are given
    (a rubric lists them top band first). Feed the indices to ``confusion_matrix`` or
    ``quadratic_weighted_kappa`` with ``low=0, high=len(bands) - 1`` for figures over bands."""
    indices = []
    for score in scores:
        found = [index for index, (low, high) in enumerate(bands) if low <= score <= high]
        if len(found) != 1:
            raise ValueError(f"score {score!r} falls in {len(found)} of the bands {list(bands)}; it must fall in one")
        indices.append(found[0])
    return indices


@dataclass(frozen=True)
class AgreementSummary:
    """Every agreement figure for one dimension (or the total) of one evaluation set."""

    name: str
    count: int
    low: int
    high: int
    tolerance: int
    qwk: float | None
    exact: float | None
    adjacent: float | None
    within_tolerance: float | None
    pearson: float | None
    spearman: float | None
    mean_bias: float | None
    teacher_mean: float | None
    model_mean: float | None
    # rows: teacher score low..high; columns: model score low..high
    confusion: tuple[tuple[int, ...], ...]


def summarize_agreement(
    name: str, teacher: Sequence[int], model: Sequence[int], *, low: int, high: int, tolerance: int
) -> AgreementSummary:
    """All agreement figures for one dimension or the total; ``tolerance`` is in points (the rubric's
    ``tolerance_for``)."""
    matrix = confusion_matrix(teacher, model, low=low, high=high)
    count = len(teacher)
    return AgreementSummary(
        name=name,
        count=count,
        low=low,
        high=high,
        tolerance=tolerance,
        qwk=quadratic_weighted_kappa(teacher, model, low=low, high=high),
        exact=exact_agreement(teacher, model),
        adjacent=adjacent_agreement(teacher, model),
        within_tolerance=within_tolerance_rate(teacher, model, tolerance),
        pearson=pearson(teacher, model),
        spearman=spearman(teacher, model),
        mean_bias=mean_bias(teacher, model),
        teacher_mean=sum(teacher) / count if count else None,
        model_mean=sum(model) / count if count else None,
        confusion=tuple(tuple(row) for row in matrix),
    )


# --- error detection ------------------------------------------------------------------------------


def edits_between(source: str, corrected: str) -> dict[int, str]:
    """The 0-based positions where ``corrected`` differs from ``source``, with the corrected character.
    SIGHAN's wrong and correct sentences are aligned character for character."""
    if len(source) != len(corrected):
        raise ValueError(
            f"sentences of {len(source)} and {len(corrected)} characters are not aligned: {source!r} / {corrected!r}"
        )
    return {index: new for index, (old, new) in enumerate(zip(source, corrected, strict=True)) if old != new}


@dataclass(frozen=True)
class DetectionCounts:
    """Sentence counts of a detection task, a positive being a sentence with an error.

    ``mismatched`` counts the sentences with errors that the system flagged but got wrong (they are among
    the false negatives); only ``flagged_precision``/``flagged_f1`` use it.
    """

    tp: int
    fp: int
    fn: int
    tn: int
    mismatched: int = 0

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def false_positive_rate(self) -> float | None:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def accuracy(self) -> float | None:
        return _ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    @property
    def flagged_precision(self) -> float | None:
        """TP over every sentence the system flagged (the ReaLiSe convention)."""
        return _ratio(self.tp, self.tp + self.fp + self.mismatched)

    @property
    def flagged_f1(self) -> float | None:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.mismatched + self.fn)


@dataclass(frozen=True)
class PositionCounts:
    """Character-level counts: positions that count as hits, positions flagged and gold positions."""

    hits: int
    flagged: int
    gold: int

    @property
    def precision(self) -> float | None:
        return _ratio(self.hits, self.flagged)

    @property
    def recall(self) -> float | None:
        return _ratio(self.hits, self.gold)

    @property
    def f1(self) -> float | None:
        return _ratio(2 * self.hits, self.flagged + self.gold)


def sighan_sentence_level(
    gold: Sequence[Edits], predicted: Sequence[Edits], *, correction: bool = False
) -> DetectionCounts:
    """SIGHAN-15 sentence-level detection (or, with ``correction``, correction) counts, as the bake-off
    defines them: see the module docstring. ``gold[i]`` and ``predicted[i]`` are sentence ``i``'s edits."""
    _same_length(gold, predicted, "gold and predicted sentences")
    tp = fp = fn = tn = mismatched = 0
    for gold_edits, predicted_edits in zip(gold, predicted, strict=True):
        if not gold_edits:
            if predicted_edits:
                fp += 1
            else:
                tn += 1
            continue
        same_positions = set(gold_edits) == set(predicted_edits)
        if same_positions and (not correction or dict(gold_edits) == dict(predicted_edits)):
            tp += 1
        else:
            fn += 1
            mismatched += bool(predicted_edits)
    return DetectionCounts(tp=tp, fp=fp, fn=fn, tn=tn, mismatched=mismatched)


def sighan_char_level(gold: Sequence[Edits], predicted: Sequence[Edits], *, correction: bool = False) -> PositionCounts:
    """Character-level detection (or correction) counts over error positions: see the module docstring."""
    _same_length(gold, predicted, "gold and predicted sentences")
    hits = flagged = gold_positions = 0
    for gold_edits, predicted_edits in zip(gold, predicted, strict=True):
        flagged += len(predicted_edits)
        gold_positions += len(gold_edits)
        for position, character in predicted_edits.items():
            if position in gold_edits and (not correction or gold_edits[position] == character):
                hits += 1
    return PositionCounts(hits=hits, flagged=flagged, gold=gold_positions)


def binary_detection(gold: Sequence[bool], predicted: Sequence[bool]) -> DetectionCounts:
    """Sentence-level detection counts (FCGEC 病句 detection): positive = the sentence has an error."""
    _same_length(gold, predicted, "gold and predicted sentences")
    pairs = list(zip(gold, predicted, strict=True))
    return DetectionCounts(
        tp=sum(g and p for g, p in pairs),
        fp=sum(not g and p for g, p in pairs),
        fn=sum(g and not p for g, p in pairs),
        tn=sum(not g and not p for g, p in pairs),
    )


@dataclass(frozen=True)
class TypeRecall:
    """How many of one error type's sentences were flagged."""

    detected: int
    total: int

    @property
    def recall(self) -> float | None:
        return _ratio(self.detected, self.total)


def recall_by_type(gold_types: Sequence[str | Collection[str]], predicted: Sequence[bool]) -> dict[str, TypeRecall]:
    """Per gold error type, the share of its sentences flagged as having an error (whatever type the system
    named). ``gold_types[i]`` is sentence ``i``'s type, or a collection of types; empty for a correct one."""
    _same_length(gold_types, predicted, "gold types and predicted sentences")
    detected: dict[str, int] = {}
    total: dict[str, int] = {}
    for types, flagged in zip(gold_types, predicted, strict=True):
        names = {types} if isinstance(types, str) else set(types)
        for error_type in (name for name in names if name):
            total[error_type] = total.get(error_type, 0) + 1
            detected[error_type] = detected.get(error_type, 0) + bool(flagged)
    return {error_type: TypeRecall(detected[error_type], total[error_type]) for error_type in sorted(total)}
