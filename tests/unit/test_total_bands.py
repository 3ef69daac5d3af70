"""Every total a built-in rubric can give has exactly one band in the class workbook (全国卷 once left 16–17, 31–32
and 46–47 of 60 without one: 等级 "—")."""

from __future__ import annotations

import pytest

from services.worker.reports.rubric_view import NO_BAND, from_rubric
from shared.prompts.rubric import list_rubrics, load_rubric_file


@pytest.mark.parametrize("info", list_rubrics(), ids=lambda info: f"{info.id}@{info.version}")
def test_every_integer_total_maps_to_exactly_one_band(info) -> None:  # type: ignore[no-untyped-def]
    rubric = load_rubric_file(info.path)
    view = from_rubric(rubric)
    assert view.total_bands, f"{info.id}: no total bands"
    top = sum(dim.max for dim in rubric.dimensions)
    for total in range(top + 1):
        holding = [band.name for band in view.total_bands if band.low <= total <= band.high]
        assert len(holding) == 1, (info.id, total, holding)
        assert view.total_band(total) == holding[0]
    assert view.total_band(top + 1) == NO_BAND and view.total_band(-1) == NO_BAND


def test_national_rubric_bands_and_fractional_totals() -> None:
    view = from_rubric(load_rubric_file(next(i.path for i in list_rubrics() if i.id == "gaokao-national")))
    assert [(b.name, b.low, b.high) for b in view.total_bands] == [
        ("一等", 48, 60), ("二等", 33, 47), ("三等", 18, 32), ("四等", 0, 17),
    ]
    totals = (47, 47.5, 48, 32.5, 17, 16)
    assert [view.total_band(t) for t in totals] == ["二等", "二等", "一等", "三等", "四等", "四等"]
