"""Roster import: every row valid or nothing, with the offending rows named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.web.ingest import RosterRow, UploadRejected, parse_roster
from tests.unit.ingest_samples import LIMITS, csv_bytes, xlsx_bytes


def rejection(filename: str, data: bytes) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        parse_roster(filename, data, LIMITS)
    return caught.value


def test_xlsx_roster_with_numbers_typed_as_numbers() -> None:
    data = xlsx_bytes(
        [["序号", "姓名", "学号", "性别"], [1, "张三", 2023001, "男"], [2, "王　五", "2023003", "女"], [3, None, None]]
    )
    assert parse_roster("名单.xlsx", data, LIMITS) == [
        RosterRow("张三", "2023001"),
        RosterRow("王五", "2023003"),
    ]


def test_csv_roster_without_numbers() -> None:
    data = csv_bytes(["姓名", "张三", "", "买买提•艾力", "John  Smith"], "gb18030")
    assert parse_roster("名单.csv", data, LIMITS) == [
        RosterRow("张三", None),
        RosterRow("买买提·艾力", None),
        RosterRow("John Smith", None),
    ]


def test_namesakes_with_distinct_numbers_are_accepted() -> None:
    data = xlsx_bytes([["姓名", "学号"], ["张伟", "1"], ["张伟", "2"]])
    assert parse_roster("名单.xlsx", data, LIMITS) == [RosterRow("张伟", "1"), RosterRow("张伟", "2")]


def test_empty_name_names_the_row() -> None:
    data = xlsx_bytes([["姓名", "学号"], ["张三", "1"], [None, "2"]])
    error = rejection("名单.xlsx", data)
    assert error.message == "名单.xlsx 第 3 行：姓名为空（学号 2）。请修改后重新上传（未导入任何学生）"
    assert error.details == ["名单.xlsx 第 3 行：姓名为空（学号 2）"]


def test_duplicate_student_number_names_both_rows() -> None:
    data = xlsx_bytes([["姓名", "学号"], ["张三", "2023001"], ["李四", "2023002"], ["王五", 2023001]])
    error = rejection("名单.xlsx", data)
    assert error.details == ["名单.xlsx 第 4 行：学号 2023001 与第 2 行重复"]


def test_duplicate_name_without_numbers_names_both_rows() -> None:
    data = csv_bytes(["姓名,学号", "张伟,", "李四,", "张 伟,3"])
    error = rejection("名单.csv", data)
    assert error.details == ["名单.csv 第 4 行：姓名“张伟”与第 2 行重复；同名学生请都填写学号以区分"]


def test_all_bad_rows_are_listed_and_nothing_is_returned() -> None:
    data = xlsx_bytes([["姓名", "学号"], [None, "1"], ["张三", "2"], ["李四", "2"], ["x" * 60, None]])
    error = rejection("名单.xlsx", data)
    assert error.message.startswith(
        "名单.xlsx 有 3 处问题：第 2 行：姓名为空（学号 1）；第 4 行：学号 2 与第 3 行重复；"
    )
    assert error.details == [
        "名单.xlsx 第 2 行：姓名为空（学号 1）",
        "名单.xlsx 第 4 行：学号 2 与第 3 行重复",
        "名单.xlsx 第 5 行：姓名过长（60 字），请检查是否填错了列",
    ]


def test_roster_without_students() -> None:
    assert rejection("名单.xlsx", xlsx_bytes([["姓名", "学号"]])).message == (
        "名单.xlsx：名单中没有学生（表头下面没有数据行）"
    )


def test_roster_without_a_name_column() -> None:
    message = rejection("名单.csv", csv_bytes(["学号", "2023001"])).message
    assert message.startswith("名单.csv：在前 10 行中找不到表头。表头应包含“姓名”列")


def test_roster_of_the_wrong_type() -> None:
    assert rejection("名单.docx", b"x").message.startswith("名单.docx：不支持的文件类型 .docx，请上传 .xlsx、.csv 文件")
    message = rejection("名单.xlsx", "姓名\n张三".encode()).message
    assert message.startswith("名单.xlsx：扩展名是 .xlsx，但文件内容是纯文本")


def test_roster_with_too_many_rows() -> None:
    data = csv_bytes(["姓名", *[f"学生{i}" for i in range(6)]])
    with pytest.raises(UploadRejected) as caught:
        parse_roster("名单.csv", data, replace(LIMITS, max_files=5))
    assert caught.value.message == "名单.csv：数据超过 5 行的上限，请分批上传"
