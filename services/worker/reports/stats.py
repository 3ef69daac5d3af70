"""Pure statistics for reports: summaries, ranks, score bins, trends and mergeable running aggregates.

Standard deviations are population deviations: a class (or a school) is the whole group, not a sample.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

NICE_BIN_WIDTHS = (1, 2, 5, 10, 20, 25, 50, 100)


@dataclass(frozen=True)
class Summary:
    count: int
    mean: float | None
    median: float | None
    std: float | None
    minimum: float | None
    maximum: float | None


def summarize(values: Sequence[float]) -> Summary:
    """Count, mean, median, population std, min and max; all but the count are None for no values."""
    if not values:
        return Summary(0, None, None, None, None, None)
    return Summary(
        count=len(values),
        mean=statistics.fmean(values),
        median=float(statistics.median(values)),
        std=statistics.pstdev(values),
        minimum=float(min(values)),
        maximum=float(max(values)),
    )


def competition_ranks(scores: Sequence[float]) -> list[int]:
    """1-based ranks, highest score first; ties share a rank and the next rank is skipped (1, 2, 2, 4)."""
    ordered = sorted(scores, reverse=True)
    first_position: dict[float, int] = {}
    for position, score in enumerate(ordered, 1):
        first_position.setdefault(score, position)
    return [first_position[score] for score in scores]


@dataclass(frozen=True)
class Bin:
    low: int
    high: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.low}–{self.high}" if self.low != self.high else str(self.low)


def bin_width(maximum: int, most_bins: int = 12) -> int:
    """The smallest round width that splits 0..maximum into at most ``most_bins`` bins."""
    for width in NICE_BIN_WIDTHS:
        if math.ceil(maximum / width) <= most_bins:
            return width
    return max(1, math.ceil(maximum / most_bins))


def histogram(values: Sequence[float], maximum: int, width: int | None = None) -> list[Bin]:
    """Counts of scores in bins of ``width`` over 0..maximum; the last bin also takes the top score (55–60)."""
    width = width or bin_width(maximum)
    count_bins = max(1, math.ceil(maximum / width))
    bounds = [(i * width, (i + 1) * width - 1 if i < count_bins - 1 else maximum) for i in range(count_bins)]
    counts = [0] * count_bins
    for value in values:
        clipped = min(max(value, 0), maximum)
        counts[min(int(clipped // width), count_bins - 1)] += 1
    return [Bin(low, high, count) for (low, high), count in zip(bounds, counts, strict=True)]


def slope(values: Sequence[float], xs: Sequence[float] | None = None) -> float | None:
    """Least-squares slope of ``values`` against ``xs`` (default 0, 1, 2 …); None for fewer than two points."""
    if len(values) < 2:
        return None
    xs = list(xs) if xs is not None else list(range(len(values)))
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(values)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True)) / spread


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class RunningStats:
    """Count, mean, population variance, min and max in one pass (Welford), mergeable (Chan et al.)."""

    __slots__ = ("count", "mean", "_m2", "minimum", "maximum")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    def merge(self, other: RunningStats) -> RunningStats:
        """Fold ``other`` into this aggregate and return self."""
        if other.count == 0:
            return self
        if self.count == 0:
            self.count, self.mean, self._m2 = other.count, other.mean, other._m2
            self.minimum, self.maximum = other.minimum, other.maximum
            return self
        count = self.count + other.count
        delta = other.mean - self.mean
        self._m2 += other._m2 + delta * delta * self.count * other.count / count
        self.mean += delta * other.count / count
        self.count = count
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        return self

    def summary(self) -> Summary:
        """Everything but the median, which one pass cannot give."""
        if self.count == 0:
            return Summary(0, None, None, None, None, None)
        std = math.sqrt(max(self._m2, 0.0) / self.count)
        return Summary(self.count, self.mean, None, std, self.minimum, self.maximum)
