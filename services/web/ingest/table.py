"""Read an essay or roster table (.xlsx or .csv): find the header row, map its columns, return the rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from services.web.ingest.errors import UnreadableFile, UploadRejected
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.textfile import decode_text
from services.web.ingest.xlsx_reader import column_letters, read_sheets

logger = logging.getLogger(__name__)

ColumnRole = Literal["name", "number", "title", "text"]
ROLE_LABELS: dict[ColumnRole, str] = {"name": "姓名", "number": "学号", "title": "标题", "text": "作文"}
HEADER_ALIASES: dict[ColumnRole, frozenset[str]] = {
    "name": frozenset({"姓名", "学生", "学生姓名", "名字", "name", "student", "studentname"}),
    "number": frozenset({"学号", "学生学号", "考号", "studentnumber", "studentno", "studentid"}),
    "title": frozenset({"标题", "题目", "作文标题", "作文题目", "title"}),
    "text": frozenset({"作文", "正文", "内容", "作文内容", "作文正文", "全文", "text", "essay", "content", "body"}),
}
HEADER_SEARCH_ROWS = 10
_HEADER_NOISE_RE = re.compile(r"[（(\[【].*?[）)\]】]|[\s_\-*:：.]+")
_DELIMITERS = (",", "\t", ";")


@dataclass(frozen=True)
class TableRow:
    """A non-blank data row; ``number`` is the row number the teacher sees in Excel."""

    number: int
    values: dict[ColumnRole, str]

    def get(self, role: ColumnRole) -> str:
        return self.values.get(role, "")


@dataclass(frozen=True)
class Table:
    where: str  # the file name (and sheet, when not the first) used to name rows in messages
    roles: frozenset[ColumnRole]
    rows: list[TableRow]

    def row_source(self, row: TableRow) -> str:
        return f"{self.where} 第 {row.number} 行"


@dataclass(frozen=True)
class TableSpec:
    """Which columns a table must have: at least one role from each group."""

    required: tuple[frozenset[ColumnRole], ...]
    hint: str  # how the header should look, for the error message


def read_table(
    data: bytes, where: str, is_xlsx: bool, spec: TableSpec, limits: UploadLimits, budget: ReadBudget
) -> Table:
    """Rows of the first sheet that has a recognisable header (CSV: the only sheet)."""
    if not is_xlsx:
        text = decode_text(data, where)
        return _parse_rows(_csv_rows(text, where, limits), where, spec, limits) or _no_header(where, spec)
    for sheet in read_sheets(data, where, limits, budget):
        table = _parse_rows(iter(sheet.rows), sheet.label, spec, limits)
        if table is not None:
            return table
    return _no_header(where, spec)


def header_key(cell: str) -> str:
    """A header cell reduced to what identifies it: no spacing, brackets (“姓名（必填）”) or case."""
    return _HEADER_NOISE_RE.sub("", unicodedata.normalize("NFKC", cell)).casefold()


def cell_text(value: object) -> str:
    """A cell as text: whole floats lose their ``.0`` (student numbers typed as numbers), dates are ISO."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _no_header(where: str, spec: TableSpec) -> NoReturn:
    raise UnreadableFile(
        where,
        f"在前 {HEADER_SEARCH_ROWS} 行中找不到表头。表头应包含{spec.hint}，"
        "请下载模板对照修改（第一行写列名，从第二行起每行一位学生）",
    )


def _header_roles(cells: list[str], row_number: int, where: str) -> dict[ColumnRole, int]:
    roles: dict[ColumnRole, int] = {}
    for index, cell in enumerate(cells):
        key = header_key(cell)
        for role, aliases in HEADER_ALIASES.items():
            if key in aliases:
                if role in roles:
                    raise UnreadableFile(
                        f"{where} 第 {row_number} 行",
                        f"表头中有两列都表示“{ROLE_LABELS[role]}”"
                        f"（第 {roles[role] + 1} 列和第 {index + 1} 列），请只保留一列",
                    )
                roles[role] = index
    return roles


def _parse_rows(
    raw_rows: Iterable[tuple[int, Sequence[object]]], where: str, spec: TableSpec, limits: UploadLimits
) -> Table | None:
    """``raw_rows`` are (row number as the teacher sees it, cell values)."""
    columns: dict[ColumnRole, int] | None = None
    rows: list[TableRow] = []
    seen_nonblank = 0
    for number, raw in raw_rows:
        cells = [cell_text(value) for value in raw]
        if columns is None:
            if not any(cells):
                continue
            seen_nonblank += 1
            candidate = _header_roles(cells, number, where)
            if all(group & candidate.keys() for group in spec.required):
                columns = candidate
            elif seen_nonblank >= HEADER_SEARCH_ROWS:
                return None
            continue
        values = {role: cells[index] if index < len(cells) else "" for role, index in columns.items()}
        if not any(values.values()):
            continue
        rows.append(TableRow(number, values))
        if len(rows) > limits.max_files:
            raise UploadRejected(f"{where}：数据超过 {limits.max_files} 行的上限，请分批上传")
    if columns is None:
        return None
    return Table(where, frozenset(columns), rows)


def _csv_rows(text: str, where: str, limits: UploadLimits) -> Iterator[tuple[int, list[str]]]:
    """Records of a CSV file, under the same row and column caps as a sheet."""
    first_lines = itertools.islice(io.StringIO(text, newline=None), HEADER_SEARCH_ROWS)  # not the whole file
    sample = "\n".join(line for line in first_lines if line.strip())
    delimiter = max(_DELIMITERS, key=sample.count) if any(d in sample for d in _DELIMITERS) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number = 0
    try:
        for row in reader:
            number += 1
            if number > limits.max_sheet_rows:
                raise UploadRejected(
                    f"{where}：表格的行数超过 {limits.max_sheet_rows} 行的上限（含空行），请删除多余的行或分批上传"
                )
            if len(row) > limits.max_columns and any(cell.strip() for cell in row[limits.max_columns :]):
                last = max(index for index, cell in enumerate(row, start=1) if cell.strip())
                raise UploadRejected(
                    f"{where} 第 {number} 行：{column_letters(last)} 列（第 {last} 列）有内容，"
                    f"超过 {limits.max_columns} 列的上限，请删除多余的列后重新上传"
                )
            yield number, row[: limits.max_columns]
    except csv.Error as exc:
        raise UnreadableFile(f"{where} 第 {number + 1} 行", f"CSV 格式错误（{exc}），请用 Excel 重新导出") from exc
