"""Safe cell writing for report workbooks: text stays text, sheet names are legal, columns fit Chinese.

Every string that reaches a worksheet goes through ``make_cell``: it is cleaned of characters Excel cannot
store and always written as a string cell, so student text such as ``=SUM(A1)`` or ``+cmd`` can never
become a formula (CSV/formula injection). Strings that *look* like formulas also get Excel's quote prefix,
so they stay text when a teacher edits the cell. The helpers work for normal and write-only workbooks.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl.cell.cell import Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from shared.clock import people_zone, wall_time

MAX_CELL_CHARS = 32767
# Row height per wrapped line, in points, for 11-point text: CJK glyphs need more than Latin ones, and LibreOffice,
# WPS and Excel all honour an explicit height (LibreOffice does not grow a row for wrapped text on opening).
LINE_HEIGHT_PT = 16.5
MAX_ROW_HEIGHT_PT = 409  # Excel's limit
MAX_SHEET_TITLE = 31
# What spreadsheet programs read as the start of a formula or command, half- and full-width.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_ILLEGAL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_ILLEGAL_TITLE_CHARS = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_RESERVED_TITLES = frozenset({"history"})

HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")
BAND_FILLS = (  # by band rank: top band first
    PatternFill("solid", start_color="C6EFCE", end_color="C6EFCE"),
    PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7"),
    PatternFill("solid", start_color="FFEB9C", end_color="FFEB9C"),
    PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE"),
)


@dataclass(frozen=True)
class CellStyle:
    """The few styles reports use; cells without one stay unstyled (cheap in write-only mode)."""

    bold: bool = False
    size: float | None = None
    fill: PatternFill | None = None
    wrap: bool = False
    number_format: str | None = None


HEADER = CellStyle(bold=True, fill=HEADER_FILL, wrap=True)
TITLE = CellStyle(bold=True, size=14)
BOLD = CellStyle(bold=True)
WRAP = CellStyle(wrap=True)
DECIMAL = CellStyle(number_format="0.00")
PERCENT = CellStyle(number_format="0.0%")


def clean_text(value: str) -> str:
    """Drop control characters and lone surrogates Excel cannot store, and cut to the cell limit."""
    return _ILLEGAL_CHARS.sub("", value)[:MAX_CELL_CHARS]


def looks_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_TRIGGERS)


def _plain_value(value: Any) -> Any:
    """Numbers stay numbers (NaN and infinity become empty), datetimes lose their timezone, the rest is text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, datetime):
        return wall_time(value, people_zone()) if value.tzinfo else value  # builders pass YUEJUAN_TIMEZONE's
    if isinstance(value, date):
        return value
    return str(value)


def make_cell(ws: Any, value: Any, style: CellStyle | None = None) -> Cell:
    """A cell for ``ws.append``; strings are always string cells, never formulas or error codes."""
    cell = WriteOnlyCell(ws)
    plain = _plain_value(value)
    if isinstance(plain, str):
        text = clean_text(plain)
        cell.value = text
        cell.data_type = "s"  # set after the value: openpyxl would infer 'f' for "=…" and 'e' for "#N/A"
        if looks_like_formula(text):
            cell.quotePrefix = True
    else:
        cell.value = plain
    if style is not None:
        _apply(cell, style)
    return cell


def _apply(cell: Cell, style: CellStyle) -> None:
    if style.bold or style.size:
        cell.font = Font(bold=style.bold, size=style.size)
    if style.fill is not None:
        cell.fill = style.fill
    if style.wrap:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    if style.number_format:
        cell.number_format = style.number_format


def sheet_title(name: str, taken: Iterable[str]) -> str:
    """A legal, unique sheet title: no []:*?/\\, no leading/trailing apostrophe, at most 31 characters.

    Excel compares titles case-insensitively and reserves ``History``; a clash gets a ``(2)``-style suffix.
    """
    base = _ILLEGAL_TITLE_CHARS.sub("_", clean_text(name)).strip().strip("'").strip() or "Sheet"
    used = {title.casefold() for title in taken}
    candidate = base[:MAX_SHEET_TITLE]
    counter = 1
    while candidate.casefold() in used or candidate.casefold() in _RESERVED_TITLES:
        counter += 1
        suffix = f"({counter})"
        candidate = base[: MAX_SHEET_TITLE - len(suffix)].rstrip().rstrip("'") + suffix
    return candidate


def add_sheet(workbook: Workbook, name: str) -> Any:
    """Create a sheet with a sanitised, unique title, set up to print (``print_setup``; set now, as a write-only
    sheet writes its properties with its first row)."""
    ws = workbook.create_sheet(sheet_title(name, workbook.sheetnames))
    print_setup(ws)
    return ws


def display_width(value: Any) -> int:
    """Columns a value needs: wide and full-width (CJK) characters count double; the widest line counts."""
    if value is None:
        return 0
    if isinstance(value, float):
        text = f"{value:.2f}"
    elif isinstance(value, datetime | date):
        text = "2000-01-01 00:00" if isinstance(value, datetime) else "2000-01-01"
    else:
        text = str(value)
    return max(
        (sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line) for line in text.split("\n")),
        default=0,
    )


def wrapped_lines(value: Any, width: float) -> int:
    """Lines a wrapped cell of ``width`` columns needs for ``value`` (each explicit line break starts a line)."""
    if value is None:
        return 0
    usable = max(1.0, width - 1)
    return sum(max(1, math.ceil(display_width(line) / usable)) for line in str(value).split("\n"))


def row_height(values: Sequence[Any], wrapped: Iterable[int], widths: dict[int, float]) -> float | None:
    """The height (points) a row needs so that its wrapped cells (0-based columns) show every line; None when
    one line is enough."""
    lines = max((wrapped_lines(values[i], widths.get(i + 1, 8.43)) for i in wrapped if i < len(values)), default=0)
    return min(MAX_ROW_HEIGHT_PT, lines * LINE_HEIGHT_PT + 3) if lines > 1 else None


class ColumnWidths:
    """Tracks the widest value per column while rows are produced, then sets the widths."""

    def __init__(self, minimum: float = 6, maximum: float = 60) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.widths: dict[int, int] = {}

    def observe(self, values: Sequence[Any]) -> None:
        for index, value in enumerate(values, 1):
            if isinstance(value, Cell):
                value = value.value
            width = display_width(value)
            if width > self.widths.get(index, 0):
                self.widths[index] = width

    def fixed(self, column: int, width: int) -> None:
        self.widths[column] = width

    def final(self) -> dict[int, float]:
        """1-based column → the width ``apply`` sets."""
        return {index: min(self.maximum, max(self.minimum, width + 2)) for index, width in self.widths.items()}

    def apply(self, ws: Any) -> None:
        """Set the widths; in write-only mode call this before the first row is appended."""
        for index, width in self.final().items():
            ws.column_dimensions[get_column_letter(index)].width = width


@dataclass
class _Row:
    values: Sequence[Any]
    style: CellStyle | None
    styles: dict[int, CellStyle]


@dataclass
class SheetBuffer:
    """The rows of one sheet, measured for column widths and written in one go.

    Write-only sheets need their column widths before the first row, so rows are collected first; report
    sheets are summaries (hundreds of rows at most), the large data is aggregated before it gets here.
    """

    ws: Any
    widths: ColumnWidths = field(default_factory=ColumnWidths)
    rows: list[_Row] = field(default_factory=list)

    @property
    def last_row(self) -> int:
        return len(self.rows)

    def add(
        self,
        values: Sequence[Any],
        style: CellStyle | None = None,
        *,
        styles: dict[int, CellStyle] | None = None,
        measure: bool = True,
    ) -> int:
        """Queue a row (``styles`` maps 0-based columns to their own style); returns its 1-based row number."""
        self.rows.append(_Row(values, style, styles or {}))
        if measure:
            self.widths.observe(values)
        return len(self.rows)

    def blank(self) -> int:
        return self.add([])

    def write(self) -> None:
        """Append the rows; in a normal (not write-only) sheet a row with wrapped cells gets the height its text
        needs, which LibreOffice and WPS do not work out by themselves."""
        self.widths.apply(self.ws)
        widths = self.widths.final()
        sized = not isinstance(self.ws, WriteOnlyWorksheet)
        for row in self.rows:
            cells = [
                make_cell(self.ws, value, row.styles.get(index, row.style))
                if value is not None or index in row.styles or row.style is not None
                else None
                for index, value in enumerate(row.values)
            ]
            self.ws.append(cells)
            wrapped = [i for i in range(len(row.values)) if (row.styles.get(i, row.style) or CellStyle()).wrap]
            height = row_height(row.values, wrapped, widths) if sized and wrapped else None
            if height is not None:
                self.ws.row_dimensions[self.ws.max_row].height = height
        self.rows.clear()


def print_setup(ws: Any, *, title_rows: int | None = 1, landscape: bool = True) -> None:
    """Print on A4 scaled to the page width (as many pages down as needed), repeating the first ``title_rows``
    rows on every page (in write-only mode, call it before the first row: see ``add_sheet``)."""
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.horizontalCentered = True
    if title_rows:
        ws.print_title_rows = f"1:{title_rows}"


def page_break_before(ws: Any, row: int) -> None:
    """Start a new printed page at ``row`` (1-based), so that a chart anchored there is not cut in half."""
    if row > 1:
        ws.row_breaks.append(Break(id=row - 1))


def save_atomically(workbook: Workbook, path: Path) -> Path:
    """Save next to ``path`` and rename, so a reader never sees half a workbook."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".xlsx", dir=path.parent)
    os.close(handle)
    try:
        workbook.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
