"""Hostile uploads that pass every size and ratio limit but cost memory or CPU to parse (issue 15).

Each shape is parsed the way the web parses it: in the bounded child process (``ingest.sandbox``), whose own
peak resident memory (``VmHWM``) comes back with the result. Parsing time is bounded by the code, not timed
here: the caps stop the read after at most a fixed number of elements, and the child's CPU and wall-clock
limits end a parse that would run on (shown with parsers that never stop).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.web.ingest import UploadLimits, UploadRejected
from services.web.ingest.sandbox import ParseRun, run_parser
from services.web.roster import read_roster_file
from tests.unit import hostile_uploads as hostile
from tests.unit.ingest_samples import LIMITS, ROSTER, replace_member, xlsx_bytes

# The parse process's peak RSS for any of these shapes. Before the caps, the 1.8 MB document of empty
# paragraphs alone took a process from 87 MB to 181 MB, and a few MB more of them take gigabytes.
PEAK_RSS_BOUND = 64 * 1024 * 1024
ESSAYS = "services.web.ingest.essays:parse_essay_files"
TOO_SLOW = "作文.xlsx：解析时间超过上限 1 秒（文件结构异常，例如大量空行或极远的列），已拒绝处理"


def parse_in_child(filename: str, data: bytes, limits: UploadLimits = LIMITS) -> ParseRun:
    run = run_parser(ESSAYS, ([(filename, data)], list(ROSTER), limits), limits, upload_name=filename)
    assert run.peak_rss_bytes < PEAK_RSS_BOUND, f"parse process peaked at {run.peak_rss_bytes / 2**20:.0f} MiB"
    assert run.peak_rss_bytes > 4 * 1024 * 1024  # a real measurement of a running Python, not a zero
    return run


def rejection_of(run: ParseRun) -> str:
    assert run.rejection is not None, f"accepted: {run.value}"
    return run.rejection.message


def test_docx_of_many_empty_paragraphs_is_refused_at_the_paragraph_cap() -> None:
    data = hostile.docx_many_empty_paragraphs(300_000)
    assert 1_000_000 < len(data) < LIMITS.max_bytes  # within the upload limit, and not refused as a zip bomb
    message = rejection_of(parse_in_child("张三.docx", data))
    assert message == (
        "张三.docx：文档中的段落超过 5000 个的上限（可能含有大量空段落），一篇作文不会有这么多段，请检查文件"
    )


def test_docx_of_many_runs_is_refused_at_the_run_cap() -> None:
    message = rejection_of(parse_in_child("张三.docx", hostile.docx_many_runs(200_000)))
    assert message == "张三.docx：文档中的文字片段（run）超过 50000 个的上限，结构异常，请检查文件"


def test_docx_of_very_long_text_is_refused_at_the_character_cap() -> None:
    message = rejection_of(parse_in_child("张三.docx", hostile.docx_long_text(400_000)))
    assert message == "张三.docx：文档中的文字（含隐藏文字）超过 100000 个字符的上限，一篇作文不会这么长，请检查文件"


def test_caps_are_the_configured_limits() -> None:
    limits = replace(LIMITS, max_paragraphs=10)
    data = hostile.docx_with_body("<w:p><w:r><w:t>段。</w:t></w:r></w:p>" * 11)
    message = rejection_of(parse_in_child("张三.docx", data, limits))
    assert message.startswith("张三.docx：文档中的段落超过 10 个的上限")
    accepted = parse_in_child("张三.docx", hostile.docx_with_body("<w:p><w:r><w:t>段。</w:t></w:r></w:p>" * 10), limits)
    assert accepted.rejection is None and accepted.value.items[0].text == "\n".join(["段。"] * 10)


def test_xlsx_with_values_in_column_xfd_is_refused_at_the_first_such_cell() -> None:
    message = rejection_of(parse_in_child("作文.xlsx", hostile.xlsx_far_right_values(2000)))
    assert message == "作文.xlsx 第 2 行：XFD 列（第 16384 列）有内容，超过 200 列的上限，请删除多余的列后重新上传"


def test_xlsx_with_blank_cells_in_column_xfd_costs_one_cell_each() -> None:
    run = parse_in_child("作文.xlsx", hostile.xlsx_far_right_blank_cells(15_000))
    assert run.rejection is None
    assert [(item.source, item.student_name, item.text) for item in run.value.items] == [
        ("作文.xlsx 第 2 行", "张三", "正文。")
    ]


def test_xlsx_of_many_blank_rows_is_refused_at_the_row_cap() -> None:
    message = rejection_of(parse_in_child("作文.xlsx", hostile.xlsx_many_blank_rows(100_000)))
    assert message == "作文.xlsx：工作表的行数超过 20000 行的上限（含空行），请删除多余的行或分批上传"


def test_csv_rows_and_columns_have_the_same_caps() -> None:
    blank_lines = ("姓名,作文\n张三,正文。\n" + "\n" * 100_000).encode()
    message = rejection_of(parse_in_child("作文.csv", blank_lines))
    assert message == "作文.csv：表格的行数超过 20000 行的上限（含空行），请删除多余的行或分批上传"
    far_right = ("姓名,作文\n" + "," * 16_383 + "x\n").encode()
    message = rejection_of(parse_in_child("作文.csv", far_right))
    assert message == "作文.csv 第 2 行：XFD 列（第 16384 列）有内容，超过 200 列的上限，请删除多余的列后重新上传"


def test_roster_with_values_in_column_xfd_is_refused_in_the_bounded_process() -> None:
    data = hostile.xlsx_far_right_values(2000, header=("姓名", "学号"))
    with pytest.raises(UploadRejected) as caught:
        read_roster_file("名单.xlsx", data, LIMITS)
    assert caught.value.message == (
        "名单.xlsx 第 2 行：XFD 列（第 16384 列）有内容，超过 200 列的上限，请删除多余的列后重新上传"
    )


# --- the process limits, for whatever the caps miss --------------------------------------------------------------


def test_a_parse_that_keeps_allocating_is_stopped_at_the_memory_limit() -> None:
    limits = replace(LIMITS, parse_memory_mb=128)
    with pytest.raises(UploadRejected) as caught:
        run_parser("tests.unit.parse_hogs:allocate_without_end", (), limits, upload_name="张三.docx")
    assert caught.value.message == (
        "张三.docx：解析时需要的内存超过上限 128 MB（文件中可能有大量空段落、空行或异常结构），已拒绝处理"
    )


def test_a_parse_that_never_ends_is_stopped_at_the_cpu_limit() -> None:
    limits = replace(LIMITS, parse_cpu_seconds=1, parse_wall_seconds=60)
    with pytest.raises(UploadRejected) as caught:
        run_parser("tests.unit.parse_hogs:spin", (), limits, upload_name="作文.xlsx")
    assert caught.value.message == TOO_SLOW


def test_a_parse_that_waits_forever_is_stopped_at_the_wall_clock_limit() -> None:
    limits = replace(LIMITS, parse_cpu_seconds=30, parse_wall_seconds=1)
    with pytest.raises(UploadRejected) as caught:
        run_parser("tests.unit.parse_hogs:block", (), limits, upload_name="作文.xlsx")
    assert caught.value.message == TOO_SLOW


# --- parts of the package -----------------------------------------------------------------------------------------


def test_a_document_part_larger_than_the_part_limit_is_refused_before_it_is_read() -> None:
    limits = replace(LIMITS, max_xml_part_bytes=1024 * 1024)
    message = rejection_of(parse_in_child("张三.docx", hostile.docx_long_text(400_000), limits))
    assert message == "张三.docx 内部的 word/document.xml：解压后 1.1 MB，超过文档内容 1.0 MB 的上限，已拒绝处理"


def test_entity_declarations_in_parts_no_reader_keeps_are_refused_as_they_stream() -> None:
    declaration = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    docx = replace_member(hostile.docx_with_body("<w:p/>"), "docProps/core.xml", declaration)
    assert rejection_of(parse_in_child("张三.docx", docx)).startswith(
        "张三.docx 内部的 docProps/core.xml：含有 DOCTYPE/ENTITY 声明"
    )
    # expat cannot read GBK, so the bytes are searched, across the 64 KB chunk boundary the declaration straddles
    header = b'<?xml version="1.0" encoding="GBK"?><!-- '
    gbk = header + b"x" * (64 * 1024 - 4 - len(header) - len(b" -->")) + b" --><!DOCTYPE x><x/>"
    assert gbk.index(b"<!DOCTYPE") == 64 * 1024 - 4
    xlsx = replace_member(xlsx_bytes([["姓名", "作文"]]), "docProps/app.xml", gbk)
    assert rejection_of(parse_in_child("作文.xlsx", xlsx)).startswith(
        "作文.xlsx 内部的 docProps/app.xml：含有 DOCTYPE/ENTITY 声明"
    )
