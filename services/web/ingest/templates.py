"""Blank files teachers download, fill in and upload: an essay table and a class roster."""

from __future__ import annotations

import codecs
import csv
import io

ESSAY_HEADER = ("姓名", "学号", "标题", "作文")
ESSAY_EXAMPLE = (
    "张三",
    "2023001",
    "以奋斗致青春",
    "青春是一场没有彩排的远行。\n\n有人说，奋斗是青春最亮丽的底色。我深以为然。",
)
ROSTER_HEADER = ("姓名", "学号")
ROSTER_EXAMPLE = ("张三", "2023001")
_COLUMN_WIDTHS = {"姓名": 12, "学号": 14, "标题": 24, "作文": 80}


def essay_template_xlsx() -> bytes:
    return _xlsx("作文", ESSAY_HEADER, ESSAY_EXAMPLE)


def essay_template_csv() -> bytes:
    return _csv(ESSAY_HEADER, ESSAY_EXAMPLE)


def roster_template_xlsx() -> bytes:
    return _xlsx("名单", ROSTER_HEADER, ROSTER_EXAMPLE)


def roster_template_csv() -> bytes:
    return _csv(ROSTER_HEADER, ROSTER_EXAMPLE)


def _xlsx(sheet_title: str, header: tuple[str, ...], example: tuple[str, ...]) -> bytes:
    # imported here: the upload parser's separate process imports this package and must start quickly
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.worksheets[0]
    sheet.title = sheet_title
    sheet.append(header)
    sheet.append(example)
    for index, label in enumerate(header):
        letter = chr(ord("A") + index)
        sheet.column_dimensions[letter].width = _COLUMN_WIDTHS[label]
        sheet[f"{letter}1"].font = Font(bold=True)
        # 学号 as text so that Excel keeps leading zeros; long essays wrap inside their cell
        sheet[f"{letter}2"].number_format = "@"
        sheet[f"{letter}2"].alignment = Alignment(wrap_text=True, vertical="top")
        sheet.column_dimensions[letter].number_format = "@"
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _csv(header: tuple[str, ...], example: tuple[str, ...]) -> bytes:
    """UTF-8 with a BOM: without it Excel on Chinese Windows reads the file as GBK and garbles it."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerow(example)
    return codecs.BOM_UTF8 + buffer.getvalue().encode("utf-8")
