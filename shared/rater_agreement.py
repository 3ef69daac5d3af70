"""Agreement between two raters of whole-point scores (model and teacher, or two teachers): confusion matrix,
quadratic weighted kappa, exact/adjacent/within-tolerance agreement and mean bias.

Pure functions shared by ``yuejuan eval`` (services/worker/evaluation/metrics.py re-exports them) and the web's
agreement dashboard, which may not import the worker. Every function takes ``(teacher, model)`` in that order
(bias is model − teacher); lists of different lengths or a score outside ``low..high`` raise ValueError; a figure
the data leave undefined is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def _same_length(first: Sequence[object], second: Sequence[object], what: str) -> None:
    if len(first) != len(second):
        raise ValueError(f"{what}: {len(first)} and {len(second)} items; they must pair one to one")


def _check_scores(teacher: Sequence[int], model: Sequence[int], low: int, high: int) -> None:
    if low > high:
        raise ValueError(f"score range {low}..{high} is empty")
    _same_length(teacher, model, "teacher and model scores")
    for score in (*teacher, *model):
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            raise ValueError(f"score {score!r} is not a whole score in {low}..{high}")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def confusion_matrix(teacher: Sequence[int], model: Sequence[int], *, low: int, high: int) -> list[list[int]]:
    """Counts by (teacher score, model score): row ``i`` is teacher score ``low + i``, column ``j`` model
    score ``low + j``; every score of the range has its row and column, used or not."""
    _check_scores(teacher, model, low, high)
    size = high - low + 1
    matrix = [[0] * size for _ in range(size)]
    for t, m in zip(teacher, model, strict=True):
        matrix[t - low][m - low] += 1
    return matrix


def quadratic_weighted_kappa(teacher: Sequence[int], model: Sequence[int], *, low: int, high: int) -> float | None:
    """Cohen's kappa with quadratic weights over ``low..high``: 1 − Σ w·O / Σ w·E, with O the observed
    confusion matrix, E the outer product of the two raters' score counts divided by the number of essays,
    and w(i, j) = (i − j)² / (high − low)².

    1.0 is perfect agreement, 0 chance level, negative worse than chance. A rater who gives every essay
    the same score while the other varies gets exactly 0 (O equals E). None where it is undefined: no
    essays, or both raters giving every essay one and the same score (a single essay scored alike
    included), where the chance disagreement Σ w·E is zero. Computed exactly, then converted to float.
    """
    matrix = confusion_matrix(teacher, model, low=low, high=high)
    count = len(teacher)
    if count == 0 or low == high:
        return None
    size = high - low + 1
    teacher_counts = [sum(row) for row in matrix]
    model_counts = [sum(matrix[i][j] for i in range(size)) for j in range(size)]
    # The weights' common denominator (high − low)² cancels between the two sums, so it is left out.
    observed = sum((i - j) ** 2 * matrix[i][j] for i in range(size) for j in range(size))
    expected = sum(
        Fraction((i - j) ** 2 * teacher_counts[i] * model_counts[j], count) for i in range(size) for j in range(size)
    )
    if expected == 0:
        return None
    return float(1 - observed / expected)


def within_tolerance_rate(teacher: Sequence[int], model: Sequence[int], tolerance: int) -> float | None:
    """Share of essays whose two scores differ by at most ``tolerance`` points; None for no essays."""
    _same_length(teacher, model, "teacher and model scores")
    if tolerance < 0:
        raise ValueError(f"tolerance {tolerance} must not be negative")
    return _ratio(sum(abs(m - t) <= tolerance for t, m in zip(teacher, model, strict=True)), len(teacher))


def exact_agreement(teacher: Sequence[int], model: Sequence[int]) -> float | None:
    """Share of essays given exactly the same score; None for no essays."""
    return within_tolerance_rate(teacher, model, 0)


def adjacent_agreement(teacher: Sequence[int], model: Sequence[int]) -> float | None:
    """Share of essays whose scores differ by at most one point; None for no essays."""
    return within_tolerance_rate(teacher, model, 1)


def mean_bias(teacher: Sequence[int], model: Sequence[int]) -> float | None:
    """Mean of model − teacher: positive when the model marks higher; None for no essays."""
    _same_length(teacher, model, "teacher and model scores")
    if not teacher:
        return None
    return float(Fraction(sum(model) - sum(teacher), len(teacher)))
