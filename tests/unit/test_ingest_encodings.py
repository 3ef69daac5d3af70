"""Text files and zip member names in the encodings Chinese teachers' computers actually produce."""

from __future__ import annotations

import codecs

import pytest

from services.web.ingest import UploadRejected, parse_essay_upload
from tests.unit.ingest_samples import LIMITS, ROSTER, csv_bytes, zip_with_raw_names

TEXT = "我的青春\n“青春”是一场没有彩排的远行——𠀀与€。"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(TEXT.encode(), id="utf-8"),
        pytest.param(codecs.BOM_UTF8 + TEXT.encode(), id="utf-8-bom"),
        pytest.param(TEXT.encode("utf-16"), id="utf-16-bom-native"),
        pytest.param(codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), id="utf-16-le-bom"),
        pytest.param(codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), id="utf-16-be-bom"),
        pytest.param(TEXT.encode("gb18030"), id="gb18030"),
    ],
)
def test_text_essay_encodings(data: bytes) -> None:
    preview = parse_essay_upload("张三.txt", data, ROSTER, LIMITS)
    assert preview.ok
    assert preview.items[0].text == TEXT


def test_gbk_text_essay() -> None:
    text = "我的青春\n青春是一场没有彩排的远行。"
    preview = parse_essay_upload("张三.txt", text.encode("gbk"), ROSTER, LIMITS)
    assert preview.items[0].text == text


def test_windows_line_endings_and_fullwidth_indentation_are_normalised() -> None:
    data = "我的青春\r\n\r\n\u3000\u3000青春是一场远行。\r\n".encode("gbk")
    assert parse_essay_upload("张三.txt", data, ROSTER, LIMITS).items[0].text == "我的青春\n\n青春是一场远行。"


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-16", "utf-8"])
def test_csv_encodings(encoding: str) -> None:
    data = csv_bytes(["姓名,作文", "张三,正文。"], encoding)
    preview = parse_essay_upload("作文.csv", data, ROSTER, LIMITS)
    assert preview.ok
    assert (preview.items[0].student_name, preview.items[0].text) == ("张三", "正文。")


def test_zip_member_names_in_gbk_are_decoded() -> None:
    data = zip_with_raw_names(
        [
            ("高三1班/张三.txt".encode("gbk"), "正文。".encode()),
            ("李四的作文.txt".encode("gbk"), "正文。".encode()),
        ]
    )
    preview = parse_essay_upload("作文.zip", data, ROSTER, LIMITS)
    assert preview.ok, [str(problem) for problem in preview.problems]
    assert [item.source for item in preview.items] == ["作文.zip/高三1班/张三.txt", "作文.zip/李四的作文.txt"]


def test_zip_member_names_in_utf8_without_the_flag_are_decoded() -> None:
    data = zip_with_raw_names([("张三.txt".encode(), "正文。".encode())])
    preview = parse_essay_upload("作文.zip", data, ROSTER, LIMITS)
    assert preview.items[0].source == "作文.zip/张三.txt"
    assert preview.ok


def test_gbk_zip_slip_name_is_still_refused() -> None:
    data = zip_with_raw_names([("../张三.txt".encode("gbk"), "正文。".encode())])
    with pytest.raises(UploadRejected) as caught:
        parse_essay_upload("作文.zip", data, ROSTER, LIMITS)
    assert caught.value.message.startswith("作文.zip：压缩包中的文件名“../张三.txt”")
