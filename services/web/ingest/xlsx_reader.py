"""Read the cell values of an .xlsx workbook by streaming its sheet XML, under caps.

Only cells that hold a value are kept, by their column letter: a row whose one cell sits in column XFD costs
one cell, not 16,384 (a reader that pads every row to its last column spends time linear in the column index).
A value beyond ``max_columns``, more than ``max_sheet_rows`` row elements or ``max_cells`` cells in a sheet,
or more than ``max_table_chars`` of text refuse the workbook as soon as they are read.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from services.web.ingest.errors import UnreadableFile, UploadRejected
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.office import read_office_parts
from services.web.ingest.xmlstream import qualified, stream_xml

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
WORKBOOK_PART = "xl/workbook.xml"
_WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
_SHARED_STRINGS = "xl/sharedStrings.xml"
_STYLES = "xl/styles.xml"
_MAX_COLUMN = 16384  # XFD
_CELL_REF_RE = re.compile(r"([A-Za-z]{1,3})(\d*)")
_DATE_FORMAT_IDS = frozenset({*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)})
_FORMAT_NOISE_RE = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|_.|\*.')
_EXCEL_ESCAPE_RE = re.compile(r"_x([0-9A-Fa-f]{4})_")
CORRUPT = "无法读取 Excel 工作簿，文件可能已损坏，请用 Excel 重新保存为 .xlsx 后上传"

CellValue = str | int | float | bool | dt.datetime | dt.time


def _m(local: str) -> str:
    return qualified(_MAIN_NS, local)


_ROW, _C, _V, _T, _IS, _SI, _RPH = _m("row"), _m("c"), _m("v"), _m("t"), _m("is"), _m("si"), _m("rPh")


def column_letters(index: int) -> str:
    """1 → A, 16384 → XFD."""
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index


@dataclass(frozen=True)
class Sheet:
    title: str
    label: str  # how messages name it: the file, and the sheet's name when it is not the first
    rows: list[tuple[int, list[CellValue | None]]]  # (row number as Excel shows it, values by column)


class _Counter:
    """Characters of text read from one workbook, against ``max_table_chars``."""

    def __init__(self, where: str, limit: int) -> None:
        self.where = where
        self.limit = limit
        self.used = 0
        self.sheets_read = 0

    def add(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise UploadRejected(f"{self.where}：表格中的文字超过 {self.limit} 个字符的上限，请分批上传")


def read_sheets(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget) -> Iterator[Sheet]:
    """The workbook's worksheets in tab order, each read when the caller asks for it."""
    parts = read_office_parts(
        data, where, limits, budget, keep=lambda name: name.startswith("xl/") and "/media/" not in name
    )
    if WORKBOOK_PART not in parts:
        raise UnreadableFile(where, CORRUPT)
    workbook = _WorkbookReader()
    stream_xml(parts[WORKBOOK_PART], f"{where} 内部的 {WORKBOOK_PART}", workbook)
    targets = _relationships(parts.get(_WORKBOOK_RELS, b""), where)
    counter = _Counter(where, limits.max_table_chars)
    strings: list[str] = []
    shared = next((t for t, kind in targets.values() if kind.endswith("/sharedStrings")), _SHARED_STRINGS)
    if shared in parts:
        stream_xml(parts[shared], f"{where} 内部的 {shared}", _SharedStringReader(strings, counter, limits.max_cells))
    date_styles: set[int] = set()
    styles = next((t for t, kind in targets.values() if kind.endswith("/styles")), _STYLES)
    if styles in parts:
        stream_xml(parts[styles], f"{where} 内部的 {styles}", _StyleReader(date_styles))
    for title, rel_id in workbook.sheets:
        label = f"{where}（工作表“{title}”）" if counter.sheets_read else where
        target, kind = targets.get(rel_id, ("", ""))
        if kind and not kind.endswith("/worksheet"):
            continue  # chart sheets and dialog sheets hold no cells
        if target not in parts:
            raise UnreadableFile(where, CORRUPT)
        counter.sheets_read += 1
        reader = _SheetReader(label, limits, strings, date_styles, workbook.date1904, counter)
        stream_xml(parts.pop(target), f"{where} 内部的 {target}", reader)
        yield Sheet(title, label, reader.rows)


def _relationships(data: bytes, where: str) -> dict[str, tuple[str, str]]:
    """Relationship id → (part name, relationship type) of the workbook."""
    reader = _RelationshipReader()
    if data:
        stream_xml(data, f"{where} 内部的 {_WORKBOOK_RELS}", reader)
    return reader.targets


class _Ignore:
    def end(self, tag: str) -> None:
        pass

    def text(self, data: str) -> None:
        pass


class _RelationshipReader(_Ignore):
    def __init__(self) -> None:
        self.targets: dict[str, tuple[str, str]] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == qualified(_PKG_REL_NS, "Relationship") and attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            name = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
            self.targets[attrs.get("Id", "")] = (name, attrs.get("Type", ""))


class _WorkbookReader(_Ignore):
    def __init__(self) -> None:
        self.sheets: list[tuple[str, str]] = []
        self.date1904 = False

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == _m("sheet"):
            self.sheets.append((attrs.get("name", ""), attrs.get(qualified(_REL_NS, "id"), "")))
        elif tag == _m("workbookPr"):
            self.date1904 = attrs.get("date1904", "0").lower() in ("1", "true")


class _StyleReader(_Ignore):
    """Which cell formats (``s`` indexes into ``cellXfs``) show numbers as dates."""

    def __init__(self, date_styles: set[int]) -> None:
        self.date_styles = date_styles
        self.custom_dates: set[int] = set()
        self.in_cell_xfs = False
        self.index = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == _m("numFmt"):
            code = _FORMAT_NOISE_RE.sub("", attrs.get("formatCode", ""))
            if any(letter in code.lower() for letter in "dmyhs") and "general" not in code.lower():
                self.custom_dates.add(_int(attrs.get("numFmtId")))
        elif tag == _m("cellXfs"):
            self.in_cell_xfs = True
        elif tag == _m("xf") and self.in_cell_xfs:
            format_id = _int(attrs.get("numFmtId"))
            if format_id in _DATE_FORMAT_IDS or format_id in self.custom_dates:
                self.date_styles.add(self.index)
            self.index += 1

    def end(self, tag: str) -> None:
        if tag == _m("cellXfs"):
            self.in_cell_xfs = False


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return -1


def _unescape(text: str) -> str:
    """Excel writes control characters as ``_xHHHH_``."""
    return _EXCEL_ESCAPE_RE.sub(lambda match: chr(int(match.group(1), 16)), text) if "_x" in text else text


class _SharedStringReader:
    def __init__(self, strings: list[str], counter: _Counter, max_strings: int) -> None:
        self.strings = strings
        self.counter = counter
        self.max_strings = max_strings
        self.pieces: list[str] = []
        self.in_text = False
        self.in_phonetic = False

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == _SI:
            self.pieces = []
        elif tag == _RPH:
            self.in_phonetic = True
        elif tag == _T and not self.in_phonetic:
            self.in_text = True

    def end(self, tag: str) -> None:
        if tag == _SI:
            if len(self.strings) >= self.max_strings:
                raise UploadRejected(
                    f"{self.counter.where}：表格中的文字条目超过 {self.max_strings} 个的上限，请分批上传"
                )
            self.strings.append(_unescape("".join(self.pieces)))
        elif tag == _RPH:
            self.in_phonetic = False
        elif tag == _T:
            self.in_text = False

    def text(self, data: str) -> None:
        if self.in_text:
            self.counter.add(len(data))
            self.pieces.append(data)


@dataclass
class _Cell:
    column: int
    kind: str
    style: int
    pieces: list[str] = field(default_factory=list)
    has_value: bool = False


class _SheetReader:
    """Rows of one worksheet as (Excel row number, values), blank rows left out."""

    def __init__(
        self, where: str, limits: UploadLimits, strings: list[str], date_styles: set[int], date1904: bool,
        counter: _Counter,
    ) -> None:
        self.where = where
        self.limits = limits
        self.strings = strings
        self.date_styles = date_styles
        self.epoch = dt.datetime(1904, 1, 1) if date1904 else dt.datetime(1899, 12, 30)
        self.counter = counter
        self.rows: list[tuple[int, list[CellValue | None]]] = []
        self.row_elements = 0
        self.cell_count = 0
        self.row_number = 0
        self.values: dict[int, CellValue] = {}
        self.last_column = 0
        self.cell: _Cell | None = None
        self.in_value = False
        self.in_phonetic = False

    def _broken(self) -> UnreadableFile:
        return UnreadableFile(self.where, CORRUPT)

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == _ROW:
            self.row_elements += 1
            if self.row_elements > self.limits.max_sheet_rows:
                raise UploadRejected(
                    f"{self.where}：工作表的行数超过 {self.limits.max_sheet_rows} 行的上限（含空行），"
                    "请删除多余的行或分批上传"
                )
            number = _int(attrs["r"]) if "r" in attrs else self.row_number + 1
            if number < 1 or number > 1_048_576:
                raise self._broken()
            self.row_number = number
            self.values = {}
            self.last_column = 0
        elif tag == _C:
            self.cell_count += 1
            if self.cell_count > self.limits.max_cells:
                raise UploadRejected(f"{self.where}：工作表的单元格超过 {self.limits.max_cells} 个的上限，请分批上传")
            column = self.last_column + 1
            if "r" in attrs:
                match = _CELL_REF_RE.fullmatch(attrs["r"])
                if match is None:
                    raise self._broken()
                column = _column_index(match.group(1))
            if column > _MAX_COLUMN:
                raise self._broken()
            self.last_column = column
            self.cell = _Cell(column, attrs.get("t", "n"), _int(attrs.get("s", "0")))
        elif self.cell is not None and (tag == _V or (tag == _T and not self.in_phonetic)):
            self._value_starts(self.cell)
            self.in_value = True
        elif tag == _RPH:
            self.in_phonetic = True

    def _value_starts(self, cell: _Cell) -> None:
        if cell.column > self.limits.max_columns:
            raise UploadRejected(
                f"{self.where} 第 {self.row_number} 行：{column_letters(cell.column)} 列（第 {cell.column} 列）有内容，"
                f"超过 {self.limits.max_columns} 列的上限，请删除多余的列后重新上传"
            )
        cell.has_value = True

    def end(self, tag: str) -> None:
        if tag in (_V, _T):
            self.in_value = False
        elif tag == _RPH:
            self.in_phonetic = False
        elif tag == _C and self.cell is not None:
            value = self._value(self.cell) if self.cell.has_value else None
            if value is not None and value != "":
                self.values[self.cell.column] = value
            self.cell = None
        elif tag == _ROW:
            if self.values:
                width = max(self.values)
                self.rows.append((self.row_number, [self.values.get(index) for index in range(1, width + 1)]))
            self.values = {}

    def text(self, data: str) -> None:
        if self.in_value and self.cell is not None:
            self.counter.add(len(data))
            self.cell.pieces.append(data)

    def _value(self, cell: _Cell) -> CellValue | None:
        raw = "".join(cell.pieces)
        if cell.kind == "s":
            index = _int(raw.strip())
            if not 0 <= index < len(self.strings):
                raise self._broken()
            return self.strings[index]
        if cell.kind in ("str", "inlineStr"):
            return _unescape(raw)
        if cell.kind in ("e", "d"):
            return raw
        if cell.kind == "b":
            return raw.strip() in ("1", "true")
        if not raw.strip():
            return None  # a formula whose result was never calculated
        number = self._number(raw.strip())
        if cell.style in self.date_styles:
            return self._date(number)
        return number

    def _number(self, raw: str) -> int | float:
        try:
            return float(raw) if any(mark in raw for mark in ".eE") else int(raw)
        except ValueError:
            raise self._broken() from None

    def _date(self, serial: float) -> CellValue:
        if not 0 <= serial < 2_958_466:  # beyond 9999-12-31
            return serial
        seconds = dt.timedelta(seconds=round(serial * 86400))
        if serial < 1:
            return (dt.datetime(1900, 1, 1) + seconds).time()
        if self.epoch.year == 1899 and serial < 60:
            seconds += dt.timedelta(days=1)  # Excel counts a 29 February 1900 that never was
        return self.epoch + seconds
