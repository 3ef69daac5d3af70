"""Student text can never become a formula; sheet names and column widths suit Excel and WPS."""

from __future__ import annotations

import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from services.worker.reports.excel import (
    ColumnWidths,
    SheetBuffer,
    add_sheet,
    display_width,
    make_cell,
    save_atomically,
    sheet_title,
)

HOSTILE = [
    "=SUM(A1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
    "#N/A",
    '=HYPERLINK("http://evil.example","点我")',
]


@pytest.mark.parametrize("write_only", [False, True])
def test_hostile_strings_are_written_and_read_back_as_text(tmp_path: Path, write_only: bool) -> None:
    wb = Workbook(write_only=write_only)
    ws = add_sheet(wb, "学生")
    sheet = SheetBuffer(ws)
    for text in HOSTILE:
        sheet.add([text, 1])
    sheet.write()
    if not write_only:
        wb.remove(wb["Sheet"])
    path = save_atomically(wb, tmp_path / "hostile.xlsx")

    loaded = load_workbook(path)["学生"]
    cells = [row[0] for row in loaded.iter_rows(min_row=1, max_row=len(HOSTILE))]
    for cell, text in zip(cells, HOSTILE, strict=True):
        assert cell.data_type == "s", text
        assert cell.value == text
    formula_like = [c for c in cells if str(c.value).startswith(("=", "+", "-", "@", "\t", "＝"))]
    assert formula_like and all(c.quotePrefix for c in formula_like)
    # Nothing in the sheet XML is a formula element.
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml


def test_make_cell_keeps_numbers_and_cleans_control_characters() -> None:
    ws = Workbook().active
    assert make_cell(ws, 42).data_type == "n"
    assert make_cell(ws, 3.5).value == 3.5
    assert make_cell(ws, float("nan")).value is None
    assert make_cell(ws, Decimal("2.5")).value == 2.5
    cell = make_cell(ws, "好\x00文\x07章\ud800")
    assert cell.value == "好文章" and cell.data_type == "s"
    assert len(make_cell(ws, "字" * 40000).value) == 32767
    assert not make_cell(ws, "普通评语").quotePrefix


def test_sheet_titles_are_legal_short_and_unique() -> None:
    assert sheet_title("高三[1]班: 作文/评语?*\\", []) == "高三_1_班_ 作文_评语___"
    long_name = "这是一个非常非常长的班级名称用来测试工作表名称长度限制是否生效的例子"
    title = sheet_title(long_name, [])
    assert len(title) == 31 and title == long_name[:31]
    taken = [title]
    second = sheet_title(long_name, taken)
    assert len(second) <= 31 and second.endswith("(2)") and second.casefold() not in {t.casefold() for t in taken}
    assert sheet_title("SUMMARY", ["summary"]) == "SUMMARY(2)"
    assert sheet_title("'引号'", []) == "引号"
    assert sheet_title("", []) == "Sheet"
    assert sheet_title("History", []) == "History(2)"


def test_add_sheet_never_raises_on_bad_names(tmp_path: Path) -> None:
    wb = Workbook()
    names = [add_sheet(wb, name).title for name in ("a/b", "a/b", "x" * 40, "x" * 40, "[]")]
    assert len(set(n.casefold() for n in names)) == 5
    assert all(len(n) <= 31 for n in names)
    save_atomically(wb, tmp_path / "names.xlsx")
    assert load_workbook(tmp_path / "names.xlsx").sheetnames[1:] == names


def test_chinese_characters_count_double_in_column_widths() -> None:
    assert display_width("abc") == 3
    assert display_width("作文") == 4
    assert display_width("高三1班，") == 9
    assert display_width("短\n很长的一行") == 10
    widths = ColumnWidths(minimum=6, maximum=60)
    widths.observe(["学号", "这是一条比较长的评语内容"])
    widths.observe(["x", "y" * 200])
    ws = Workbook().active
    widths.apply(ws)
    assert ws.column_dimensions["A"].width == 6
    assert ws.column_dimensions["B"].width == 60


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    wb = Workbook()
    target = tmp_path / "out" / "report.xlsx"
    save_atomically(wb, target)
    assert target.is_file()
    assert [p.name for p in target.parent.iterdir()] == ["report.xlsx"]
