"""Downloadable templates: the right header, one example row, and they parse back."""

from __future__ import annotations

import codecs
import io

import openpyxl

from services.web.ingest import (
    RosterEntry,
    RosterRow,
    essay_template_csv,
    essay_template_xlsx,
    parse_essay_upload,
    parse_roster,
    roster_template_csv,
    roster_template_xlsx,
)
from tests.unit.ingest_samples import LIMITS

EXAMPLE_ROSTER = [RosterEntry(1, "张三", "2023001")]


def test_essay_template_xlsx_has_header_and_example() -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(essay_template_xlsx())).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("姓名", "学号", "标题", "作文")
    assert len(rows) == 2 and rows[1][:3] == ("张三", "2023001", "以奋斗致青春")


def test_essay_templates_parse_back() -> None:
    for filename, data in (("作文.xlsx", essay_template_xlsx()), ("作文.csv", essay_template_csv())):
        preview = parse_essay_upload(filename, data, EXAMPLE_ROSTER, LIMITS)
        assert preview.ok, filename
        assert preview.items[0].title == "以奋斗致青春"


def test_csv_templates_start_with_a_utf8_bom_for_excel() -> None:
    for data in (essay_template_csv(), roster_template_csv()):
        assert data.startswith(codecs.BOM_UTF8)
    assert roster_template_csv().decode("utf-8-sig").splitlines() == ["姓名,学号", "张三,2023001"]


def test_roster_templates_parse_back() -> None:
    expected = [RosterRow("张三", "2023001")]
    assert parse_roster("名单.xlsx", roster_template_xlsx(), LIMITS) == expected
    assert parse_roster("名单.csv", roster_template_csv(), LIMITS) == expected
