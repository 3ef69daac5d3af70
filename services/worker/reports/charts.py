"""Native Excel charts over ranges of a report sheet, with axes that Excel and WPS both show."""

from __future__ import annotations

from typing import Any

from openpyxl.chart import BarChart, LineChart, Reference

WIDTH_CM, HEIGHT_CM = 24, 10
ROWS_PER_CHART = 22  # rows a chart of HEIGHT_CM covers at the default row height, plus a gap


def _axes(chart: Any, title: str, y_title: str, x_title: str | None, y_format: str) -> Any:
    chart.title, chart.y_axis.title, chart.legend = title, y_title, None
    if x_title:
        chart.x_axis.title = x_title
    # openpyxl leaves <c:delete> unset, which recent Excel reads as "hide the axis".
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.y_axis.number_format = y_format
    chart.width, chart.height = WIDTH_CM, HEIGHT_CM
    return chart


def bar_chart(title: str, y_title: str, *, x_title: str | None = None, y_format: str = "General") -> BarChart:
    return _axes(BarChart(), title, y_title, x_title, y_format)


def line_chart(title: str, y_title: str, *, x_title: str | None = None, y_format: str = "General") -> LineChart:
    return _axes(LineChart(), title, y_title, x_title, y_format)


def add_series(chart: Any, ws: Any, column: int, header_row: int, last_row: int, categories: int = 1) -> Any:
    """One series: the values in ``column`` under its header, labelled by the ``categories`` column."""
    chart.add_data(Reference(ws, min_col=column, min_row=header_row, max_row=last_row), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=categories, min_row=header_row + 1, max_row=last_row))
    return chart
