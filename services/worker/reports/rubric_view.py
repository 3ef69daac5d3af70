"""What reports need from a rubric: dimension names, maxima and bands, and a band for the total.

A report must still be produced when a grade names a rubric that can no longer be loaded (a school's
file was moved); the dimensions are then taken from the grades themselves, without bands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from shared.prompts.rubric import Rubric

logger = logging.getLogger(__name__)

NO_BAND = "—"


@dataclass(frozen=True)
class BandView:
    name: str
    low: int
    high: int


@dataclass(frozen=True)
class DimensionView:
    key: str
    name: str
    max: int
    bands: tuple[BandView, ...]  # top band first

    def band_of(self, score: float) -> str:
        return _band_of(self.bands, score)

    def rank_of(self, score: float) -> int | None:
        for rank, band in enumerate(self.bands):
            if band.low <= score <= band.high:
                return rank
        return None


@dataclass(frozen=True)
class RubricView:
    ref: str
    name: str
    total: int | None
    dimensions: tuple[DimensionView, ...]
    total_bands: tuple[BandView, ...]  # top band first; empty when dimensions have unequal band counts
    error_types: tuple[str, ...]

    def dimension(self, key: str) -> DimensionView | None:
        return next((dim for dim in self.dimensions if dim.key == key), None)

    def total_band(self, total: float) -> str:
        bands = self.total_bands
        if not bands or not bands[-1].low <= total <= bands[0].high:
            return NO_BAND
        # Bands touch (see from_rubric): the top one whose floor the total reaches, fractions included.
        return next(band.name for band in bands if total >= band.low)


def _band_of(bands: tuple[BandView, ...], score: float) -> str:
    for band in bands:
        if band.low <= score <= band.high:
            return band.name
    return NO_BAND


def from_rubric(rubric: Rubric) -> RubricView:
    dimensions = tuple(
        DimensionView(dim.key, dim.name, dim.max, tuple(BandView(b.name, b.min, b.max) for b in dim.bands))
        for dim in rubric.dimensions
    )
    total_bands: tuple[BandView, ...] = ()
    if len({len(dim.bands) for dim in dimensions}) == 1:
        # Band r of the total starts at the sum of band r's floors and reaches up to the next band's floor, so every
        # total has a band (全国卷: 一等 48–60, 二等 33–47, 三等 18–32, 四等 0–17; the sums of the band tops, 45 and 30
        # and 15, would leave 46–47, 31–32 and 16–17 without one).
        lows = [sum(dim.bands[rank].low for dim in dimensions) for rank in range(len(dimensions[0].bands))]
        top = sum(dim.bands[0].high for dim in dimensions)
        total_bands = tuple(
            BandView(dimensions[0].bands[rank].name, low, top if rank == 0 else lows[rank - 1] - 1)
            for rank, low in enumerate(lows)
        )
    return RubricView(rubric.ref, rubric.name, rubric.total, dimensions, total_bands, tuple(rubric.error_types))


def from_scores(ref: str, scores: Iterable[Mapping[str, float]]) -> RubricView:
    """A band-less view from the grades alone: keys in first-seen order, maxima as the highest score seen."""
    maxima: dict[str, float] = {}
    for row in scores:
        for key, value in row.items():
            maxima[key] = max(maxima.get(key, 0), float(value))
    dimensions = tuple(DimensionView(key, key, max(1, int(top)), ()) for key, top in maxima.items())
    return RubricView(ref, ref, None, dimensions, (), ())


@lru_cache(maxsize=64)
def _load(rubric_id: str, version: str) -> RubricView | None:
    from shared.prompts.rubric import resolve_rubric

    try:
        return from_rubric(resolve_rubric(rubric_id, version))
    except Exception as exc:  # a missing school rubric must not stop a report
        logger.warning("rubric %s@%s could not be loaded for a report: %s", rubric_id, version, exc)
        return None


def rubric_view(rubric_id: str, version: str, scores: Iterable[Mapping[str, float]] = ()) -> RubricView:
    """The rubric's view, or one built from ``scores`` when the rubric cannot be loaded."""
    return _load(rubric_id, version) or from_scores(f"{rubric_id}@{version}", scores)
