"""Hostile .docx/.xlsx files that pass the size and compression-ratio checks but are costly to parse.

Each carries random ``rsid``-style attributes, as Word writes, so that it compresses no better than a real
document (a run of identical elements would be refused as a zip bomb by its ratio alone).
"""

from __future__ import annotations

import os
import random

from tests.unit.ingest_samples import docx_bytes, replace_member, xlsx_bytes

W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_CJK_FIRST = 0x4E00


def _rsids(count: int) -> list[str]:
    raw = os.urandom(4 * count).hex().upper()
    return [raw[8 * i : 8 * i + 8] for i in range(count)]


def docx_with_body(body: str) -> bytes:
    declaration = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    document = f"{declaration}<w:document {W_NS}><w:body>{body}</w:body></w:document>"
    return replace_member(docx_bytes("占位"), "word/document.xml", document.encode())


def docx_many_empty_paragraphs(count: int) -> bytes:
    return docx_with_body("".join(f'<w:p w:rsidR="{rsid}"/>' for rsid in _rsids(count)))


def docx_many_runs(count: int) -> bytes:
    runs = "".join(f'<w:r w:rsidRPr="{rsid}"/>' for rsid in _rsids(count))
    return docx_with_body(f"<w:p>{runs}</w:p>")


def docx_long_text(chars: int, seed: int = 7) -> bytes:
    picker = random.Random(seed)
    text = "".join(chr(_CJK_FIRST + picker.randrange(3000)) for _ in range(chars))
    return docx_with_body(f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>")


def _sheet_xml(rows: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        f"{rows}</sheetData></worksheet>"
    ).encode()


def _text_cell(reference: str, text: str) -> str:
    return f'<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>'


def _header_row(labels: tuple[str, ...]) -> str:
    cells = "".join(_text_cell(f"{chr(ord('A') + index)}1", label) for index, label in enumerate(labels))
    return f'<row r="1">{cells}</row>'


def xlsx_with_rows(rows: str, header: tuple[str, ...] = ("姓名", "作文")) -> bytes:
    """A workbook whose first sheet is ``header`` in row 1 followed by the raw ``<row>`` elements ``rows``."""
    return replace_member(xlsx_bytes([["x"]]), "xl/worksheets/sheet1.xml", _sheet_xml(_header_row(header) + rows))


def xlsx_far_right_values(rows: int, header: tuple[str, ...] = ("姓名", "作文")) -> bytes:
    """Rows whose only cell, in column XFD (16,384), holds a value."""
    body = "".join(
        f'<row r="{number}">{_text_cell(f"XFD{number}", rsid)}</row>'
        for number, rsid in enumerate(_rsids(rows), start=2)
    )
    return xlsx_with_rows(body, header)


def xlsx_far_right_blank_cells(rows: int) -> bytes:
    """One real essay row, then rows whose only cell is a formatted blank in column XFD."""
    essay = f'<row r="2">{_text_cell("A2", "张三")}{_text_cell("B2", "正文。")}</row>'
    blanks = "".join(
        f'<row r="{number}" x="{rsid}"><c r="XFD{number}" s="0"/></row>'
        for number, rsid in enumerate(_rsids(rows), start=3)
    )
    return xlsx_with_rows(essay + blanks)


def xlsx_many_blank_rows(rows: int) -> bytes:
    body = "".join(f'<row r="{number}" x="{rsid}"/>' for number, rsid in enumerate(_rsids(rows), start=2))
    return xlsx_with_rows(body)
