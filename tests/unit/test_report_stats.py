"""Report statistics against independent computations."""

from __future__ import annotations

import random
import statistics

import pytest

from services.worker.reports.stats import (
    RunningStats,
    bin_width,
    competition_ranks,
    histogram,
    share,
    slope,
    summarize,
)


def test_summary_matches_the_statistics_module() -> None:
    values = [42, 51, 38, 51, 60, 17, 44]
    summary = summarize(values)
    assert summary.count == 7
    assert summary.mean == pytest.approx(statistics.fmean(values))
    assert summary.median == statistics.median(values) == 44
    assert summary.std == pytest.approx(statistics.pstdev(values))
    assert (summary.minimum, summary.maximum) == (17, 60)


def test_summary_of_nothing_is_empty_not_an_error() -> None:
    summary = summarize([])
    assert summary.count == 0 and summary.mean is None and summary.median is None and summary.std is None


def test_even_count_median_is_the_midpoint() -> None:
    assert summarize([10, 20, 30, 41]).median == 25


def test_ties_share_a_rank_and_the_next_rank_is_skipped() -> None:
    assert competition_ranks([50, 55, 50, 40, 55]) == [3, 1, 3, 5, 1]
    assert competition_ranks([]) == []


def test_ranks_agree_with_counting_higher_scores() -> None:
    rng = random.Random(7)
    scores = [rng.randint(20, 60) for _ in range(200)]
    expected = [1 + sum(other > score for other in scores) for score in scores]
    assert competition_ranks(scores) == expected


def test_histogram_bins_cover_zero_to_the_maximum_and_count_every_score() -> None:
    bins = histogram([0, 4, 5, 54, 55, 59, 60, 60], 60)
    assert bin_width(60) == 5 and len(bins) == 12
    assert (bins[0].low, bins[0].high, bins[0].count) == (0, 4, 2)
    assert (bins[1].low, bins[1].high, bins[1].count) == (5, 9, 1)
    assert (bins[-1].low, bins[-1].high, bins[-1].count) == (55, 60, 4)
    assert bins[-1].label == "55–60"
    assert sum(b.count for b in bins) == 8


def test_histogram_clamps_scores_outside_the_range() -> None:
    bins = histogram([-3, 75], 50)
    assert bins[0].count == 1 and bins[-1].count == 1


def test_bin_width_grows_with_the_maximum() -> None:
    assert bin_width(20) == 2
    assert bin_width(100) == 10
    assert bin_width(150) == 20


def test_slope_is_the_least_squares_slope() -> None:
    assert slope([50, 52, 54, 56]) == pytest.approx(2.0)
    ys, xs = [3.0, 7.0, 8.0, 15.0], [0.0, 1.0, 3.0, 4.0]
    assert slope(ys, xs) == pytest.approx(statistics.linear_regression(xs, ys).slope)
    assert slope([40]) is None
    assert slope([1, 2], [3, 3]) is None


def test_share_of_zero_is_none() -> None:
    assert share(3, 4) == 0.75
    assert share(1, 0) is None


def test_running_stats_merged_in_parts_equal_one_pass() -> None:
    rng = random.Random(11)
    values = [rng.uniform(0, 60) for _ in range(1000)]
    parts = [values[:1], values[1:400], [], values[400:]]
    merged = RunningStats()
    for part in parts:
        stats = RunningStats()
        for value in part:
            stats.add(value)
        merged.merge(stats)
    summary = merged.summary()
    assert summary.count == 1000
    assert summary.mean == pytest.approx(statistics.fmean(values))
    assert summary.std == pytest.approx(statistics.pstdev(values))
    assert (summary.minimum, summary.maximum) == (min(values), max(values))
    assert RunningStats().summary().mean is None
