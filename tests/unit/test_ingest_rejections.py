"""The bad-input corpus: every upload here is refused as a whole, with a message naming the file (and row)."""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import replace

import pytest

from services.web.ingest import UploadRejected, parse_essay_upload, parse_roster
from tests.unit.ingest_samples import (
    ESSAY,
    LIMITS,
    ROSTER,
    docx_bytes,
    replace_member,
    with_declared_size,
    with_flag,
    xlsx_bytes,
    zip_bytes,
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body></w:document>
"""


def rejection(filename: str, data: bytes, limits: object = LIMITS) -> str:
    with pytest.raises(UploadRejected) as caught:
        parse_essay_upload(filename, data, ROSTER, limits)  # type: ignore[arg-type]
    return caught.value.message


def zeros_zip(name: str, size: int) -> bytes:
    return zip_bytes({name: b"\x00" * size})


# --- size and count limits -------------------------------------------------------------------------------


def test_empty_upload() -> None:
    assert rejection("作文.xlsx", b"") == "作文.xlsx：文件是空的（0 字节），请检查后重新上传"


def test_upload_larger_than_max_bytes() -> None:
    message = rejection("张三.txt", "字".encode() * 400_000, replace(LIMITS, max_bytes=1024 * 1024))
    assert message == "张三.txt：文件过大（1.1 MB，上限 1.0 MB），请分批上传"


def test_zip_with_too_many_files() -> None:
    data = zip_bytes({f"学生{i}.txt": "正文。".encode() for i in range(6)})
    message = rejection("class.zip", data, replace(LIMITS, max_files=5))
    assert message == "class.zip：压缩包中有 6 个文件，超过上限 5 个，请分批上传"


def test_zip_with_a_huge_central_directory_is_refused_before_parsing() -> None:
    data = zip_bytes({f"{i}/": b"" for i in range(3000)}, compression=zipfile.ZIP_STORED)
    message = rejection("class.zip", data, replace(LIMITS, max_files=5))
    assert message == "class.zip：压缩包中的条目过多（声明 3000 个，上限 2000 个），已拒绝处理"


def test_table_with_too_many_rows() -> None:
    data = xlsx_bytes([["姓名", "作文"], *([["张三", "正文。"]] * 6)])
    message = rejection("作文.xlsx", data, replace(LIMITS, max_files=5))
    assert message == "作文.xlsx：数据超过 5 行的上限，请分批上传"


# --- zip bombs ---------------------------------------------------------------------------------------------


def test_zip_bomb_by_compression_ratio() -> None:
    data = zeros_zip("张三.txt", 50 * 1024 * 1024)  # 50 MB of zeros, about 50 KB compressed
    assert len(data) < 100 * 1024
    message = rejection("class.zip", data, replace(LIMITS, max_uncompressed_bytes=1024**3))
    assert message.startswith("class.zip：压缩包中“张三.txt”的压缩比异常（")
    assert message.endswith("上限 100:1），可能是压缩炸弹，已拒绝处理")


def test_zip_bomb_by_declared_total_size() -> None:
    data = zeros_zip("张三.txt", 20 * 1024 * 1024)
    limits = replace(LIMITS, max_uncompressed_bytes=10 * 1024 * 1024, max_ratio=10_000)
    message = rejection("class.zip", data, limits)
    assert message == "class.zip：解压后共 20.0 MB，超过上限 10.0 MB，可能是压缩炸弹，已拒绝处理"


def test_zip_bomb_whose_headers_lie_about_the_size() -> None:
    honest = zeros_zip("张三.txt", 20 * 1024 * 1024)
    data = with_declared_size(honest, "张三.txt", 1000)  # headers claim 1000 bytes, the stream holds 20 MB
    started = time.monotonic()
    message = rejection("class.zip", data)
    assert time.monotonic() - started < 2  # stopped after the declared size, never inflated 20 MB
    assert message.startswith("class.zip/张三.txt：无法解压，压缩包已损坏或头信息与内容不符")


def test_docx_that_is_a_zip_bomb() -> None:
    bomb = replace_member(docx_bytes(ESSAY), "word/media/image1.png", b"\x00" * (30 * 1024 * 1024))
    message = rejection("张三.docx", bomb, replace(LIMITS, max_uncompressed_bytes=1024**3))
    assert message.startswith("张三.docx：压缩包中“word/media/image1.png”的压缩比异常")


def test_xlsx_that_is_a_zip_bomb() -> None:
    workbook = xlsx_bytes([["姓名", "作文"], ["张三", "正文。"]])
    bomb = replace_member(workbook, "xl/worksheets/sheet1.xml", b" " * (30 * 1024 * 1024))
    message = rejection("作文.xlsx", bomb, replace(LIMITS, max_uncompressed_bytes=1024**3))
    assert message.startswith("作文.xlsx：压缩包中“xl/worksheets/sheet1.xml”的压缩比异常")


def test_docx_bomb_inside_a_zip_is_fatal() -> None:
    bomb = replace_member(docx_bytes(ESSAY), "word/media/image1.png", b"\x00" * (30 * 1024 * 1024))
    data = zip_bytes({"张三.docx": bomb}, compression=zipfile.ZIP_STORED)
    message = rejection("class.zip", data, replace(LIMITS, max_bytes=1024**2, max_uncompressed_bytes=1024**3))
    assert message.startswith("class.zip/张三.docx：压缩包中“word/media/image1.png”的压缩比异常")


def test_decompressed_bytes_of_all_documents_share_one_budget() -> None:
    members = {f"学生{i}.docx": docx_bytes("正文。" * 2000) for i in range(8)}
    data = zip_bytes(members, compression=zipfile.ZIP_STORED)
    message = rejection("class.zip", data, replace(LIMITS, max_uncompressed_bytes=len(data) + 100_000))
    assert "超过上限" in message and "可能是压缩炸弹" in message
    assert message.startswith("class.zip/学生")


# --- path traversal ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member", ["../张三.txt", "作文/../../张三.txt", "/etc/张三.txt", "C:/张三.txt", "c:张三.txt", "..\\张三.txt"]
)
def test_zip_slip_member_names(member: str) -> None:
    data = zip_bytes({"李四.txt": "正文。".encode(), member: "正文。".encode()})
    message = rejection("class.zip", data)
    assert message.startswith(f"class.zip：压缩包中的文件名“{member}”含有“..”、绝对路径或盘符")
    assert "路径穿越" in message


def test_zip_slip_inside_a_docx() -> None:
    data = replace_member(docx_bytes(ESSAY), "../../evil.xml", b"<x/>")
    assert rejection("张三.docx", data).startswith("张三.docx：压缩包中的文件名“../../evil.xml”")


# --- XML entity attacks -------------------------------------------------------------------------------------


def test_billion_laughs_docx() -> None:
    data = replace_member(docx_bytes(ESSAY), "word/document.xml", BILLION_LAUGHS)
    message = rejection("张三.docx", data)
    assert message.startswith("张三.docx 内部的 word/document.xml：含有 DOCTYPE/ENTITY 声明")


def test_external_entity_docx() -> None:
    data = replace_member(docx_bytes(ESSAY), "word/document.xml", EXTERNAL_ENTITY)
    assert rejection("张三.docx", data).startswith("张三.docx 内部的 word/document.xml：含有 DOCTYPE/ENTITY 声明")


def test_entity_declaration_hidden_in_utf16_xml() -> None:
    xml = EXTERNAL_ENTITY.replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"').decode()
    data = replace_member(docx_bytes(ESSAY), "word/document.xml", xml.encode("utf-16"))
    assert rejection("张三.docx", data).startswith("张三.docx 内部的 word/document.xml：含有 DOCTYPE/ENTITY 声明")


def test_entity_declaration_in_an_encoding_expat_cannot_read() -> None:
    xml = EXTERNAL_ENTITY.replace(b'version="1.0"', b'version="1.0" encoding="GBK"')
    data = replace_member(docx_bytes(ESSAY), "word/document.xml", xml)
    assert rejection("张三.docx", data).startswith("张三.docx 内部的 word/document.xml：含有 DOCTYPE/ENTITY 声明")


def test_billion_laughs_in_an_xlsx_part() -> None:
    workbook = xlsx_bytes([["姓名", "作文"], ["张三", "正文。"]])
    data = replace_member(workbook, "xl/sharedStrings.xml", BILLION_LAUGHS)
    message = rejection("作文.xlsx", data)
    assert message.startswith("作文.xlsx 内部的 xl/sharedStrings.xml：含有 DOCTYPE/ENTITY 声明")


def test_entity_attack_in_a_docx_inside_a_zip_is_fatal() -> None:
    docx_attack = replace_member(docx_bytes(ESSAY), "word/document.xml", BILLION_LAUGHS)
    data = zip_bytes({"李四.txt": "正文。".encode(), "张三.docx": docx_attack})
    message = rejection("class.zip", data)
    assert message.startswith("class.zip/张三.docx 内部的 word/document.xml：含有 DOCTYPE/ENTITY 声明")


def test_entity_attack_in_a_roster_workbook() -> None:
    workbook = xlsx_bytes([["姓名"], ["张三"]])
    data = replace_member(workbook, "xl/workbook.xml", EXTERNAL_ENTITY)
    with pytest.raises(UploadRejected) as caught:
        parse_roster("名单.xlsx", data, LIMITS)
    assert caught.value.message.startswith("名单.xlsx 内部的 xl/workbook.xml：含有 DOCTYPE/ENTITY 声明")


# --- wrong types by content -----------------------------------------------------------------------------------


def test_docx_that_is_really_a_text_file() -> None:
    message = rejection("张三.docx", "这其实是记事本写的作文。".encode())
    assert message == (
        "张三.docx：扩展名是 .docx，但文件内容是纯文本，与扩展名不符；如果这是纯文本作文，请把扩展名改为 .txt"
    )


def test_xlsx_that_is_a_renamed_exe() -> None:
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(range(256)) * 8
    assert rejection("作文.xlsx", exe) == "作文.xlsx：扩展名是 .xlsx，但文件内容是可执行程序，与扩展名不符"


def test_xlsx_that_is_really_a_csv() -> None:
    message = rejection("作文.xlsx", "姓名,作文\n张三,正文。".encode())
    assert message.endswith("与扩展名不符；如果这是从 Excel 导出的 CSV 表格，请把扩展名改为 .csv")


def test_docx_that_is_really_a_workbook() -> None:
    data = xlsx_bytes([["姓名", "作文"]])
    message = rejection("张三.docx", data)
    assert message == (
        "张三.docx：扩展名是 .docx，但文件内容是 Excel 工作簿（.xlsx），与扩展名不符；请把扩展名改为 .xlsx 后再上传"
    )


def test_zip_that_is_a_plain_zip_named_docx() -> None:
    data = zip_bytes({"a.txt": b"x"})
    assert rejection("张三.docx", data).startswith("张三.docx：扩展名是 .docx，但文件内容是 zip 压缩包")


def test_txt_that_is_binary() -> None:
    data = bytes(range(256)) * 4
    assert rejection("张三.txt", data).startswith("张三.txt：扩展名是 .txt，但文件内容是无法识别的二进制数据")


def test_utf16_text_without_a_bom_is_refused_as_binary() -> None:
    data = "Essay 正文。".encode("utf-16-le")
    assert rejection("张三.txt", data).startswith("张三.txt：扩展名是 .txt，但文件内容是无法识别的二进制数据")


def test_legacy_doc_upload() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
    assert rejection("张三.doc", ole).startswith(
        "张三.doc：这个文件是旧版 Word 格式，请用 Word 或 WPS 打开后“另存为” .docx"
    )


def test_legacy_xls_renamed_to_xlsx() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
    message = rejection("作文.xlsx", ole)
    assert message.startswith("作文.xlsx：扩展名是 .xlsx，但文件内容是旧版 Office/WPS 文件（.doc/.xls/.wps）")


def test_unsupported_extension() -> None:
    assert (
        rejection("作文.pages", b"x")
        == "作文.pages：不支持的文件类型 .pages，请上传 .xlsx、.csv、.docx、.txt、.zip 文件"
    )


# --- corrupt files ----------------------------------------------------------------------------------------------


def test_truncated_docx() -> None:
    data = docx_bytes(ESSAY)
    message = rejection("张三.docx", data[: len(data) // 2])
    assert message == "张三.docx：文件已损坏（压缩结构不完整或被截断），请重新保存后上传"


def test_truncated_xlsx() -> None:
    data = xlsx_bytes([["姓名", "作文"], ["张三", "正文。"]])
    assert rejection("作文.xlsx", data[:-200]) == "作文.xlsx：文件已损坏（压缩结构不完整或被截断），请重新保存后上传"


def test_docx_with_broken_document_xml() -> None:
    data = replace_member(docx_bytes(ESSAY), "word/document.xml", b"<w:document><w:body>")
    assert (
        rejection("张三.docx", data)
        == "张三.docx 内部的 word/document.xml：内部 XML 已损坏，请用 Office 重新保存后上传"
    )


def test_docx_python_docx_cannot_open() -> None:
    data = replace_member(docx_bytes(ESSAY), "[Content_Types].xml", b"<Types/>")
    message = rejection("张三.docx", data)
    assert message == "张三.docx：无法读取 Word 文档的内容，文件可能已损坏，请用 Word 重新保存为 .docx 后上传"


def test_xlsx_openpyxl_cannot_open() -> None:
    sheet = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="n"><v>not a number</v></c></row></sheetData></worksheet>'
    )
    data = replace_member(xlsx_bytes([["姓名", "作文"]]), "xl/worksheets/sheet1.xml", sheet)
    message = rejection("作文.xlsx", data)
    assert message == "作文.xlsx：无法读取 Excel 工作簿，文件可能已损坏，请用 Excel 重新保存为 .xlsx 后上传"


def test_corrupt_member_stream_in_a_zip_is_fatal() -> None:
    data = bytearray(zip_bytes({"张三.txt": "正文。".encode() * 100}))
    data[40:60] = b"\xff" * 20  # inside the deflate stream of the first member
    assert rejection("class.zip", bytes(data)).startswith("class.zip/张三.txt：无法解压")


def test_password_protected_member() -> None:
    data = with_flag(zip_bytes({"张三.txt": "正文。".encode()}), 0x1)
    assert rejection("class.zip", data) == "class.zip/张三.txt：文件设置了密码，请去掉密码后重新打包上传"


# --- tables that cannot be read ---------------------------------------------------------------------------------


def test_table_without_a_recognisable_header() -> None:
    data = xlsx_bytes([["同学", "文章"], ["张三", "正文。"]])
    message = rejection("作文.xlsx", data)
    assert message.startswith("作文.xlsx：在前 10 行中找不到表头。表头应包含“姓名”（或“学号”）和“作文”两列")


def test_table_with_two_name_columns() -> None:
    data = xlsx_bytes([["姓名", "学生", "作文"], ["张三", "张三", "正文。"]])
    message = rejection("作文.xlsx", data)
    assert message == "作文.xlsx 第 1 行：表头中有两列都表示“姓名”（第 1 列和第 2 列），请只保留一列"


def test_csv_with_a_broken_row() -> None:
    data = '姓名,作文\n张三,正文。\n李四,"未闭合\x00'.encode()
    assert rejection("作文.csv", data).startswith("作文.csv：扩展名是 .csv，但文件内容是无法识别的二进制数据")


def test_csv_in_an_unknown_encoding() -> None:
    data = "姓名,作文\n张三,正文".encode() + b"\xff\xfe\xfd"
    assert rejection("作文.csv", data).startswith("作文.csv：扩展名是 .csv，但文件内容是无法识别的二进制数据")


def test_zipped_table_error_names_the_member() -> None:
    inner = xlsx_bytes([["姓名", "姓名", "作文"]])
    preview = parse_essay_upload("class.zip", zip_bytes({"作文.xlsx": inner}), ROSTER, LIMITS)
    assert [str(problem) for problem in preview.problems] == [
        "class.zip/作文.xlsx 第 1 行：表头中有两列都表示“姓名”（第 1 列和第 2 列），请只保留一列"
    ]


def test_zip_bytes_helper_really_writes_deflate() -> None:
    with zipfile.ZipFile(io.BytesIO(zeros_zip("a", 1000))) as archive:
        assert archive.getinfo("a").compress_type == zipfile.ZIP_DEFLATED
