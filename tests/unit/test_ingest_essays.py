"""Essay uploads that should be read: tables, documents, zips, matching to the roster, per-essay problems."""

from __future__ import annotations

import io
from dataclasses import replace

import docx

from services.web.ingest import EssayPreview, RosterEntry, parse_essay_upload
from tests.unit.ingest_samples import (
    ESSAY,
    LIMITS,
    ROSTER,
    csv_bytes,
    docx_bytes,
    replace_member,
    xlsx_bytes,
    zip_bytes,
)


def problem_texts(preview: EssayPreview) -> list[str]:
    return [str(problem) for problem in preview.problems]


def test_xlsx_rows_are_matched_by_student_number_and_name() -> None:
    data = xlsx_bytes(
        [
            ["学号", "姓名", "标题", "作文"],
            [2023001, "张三", "我的青春", "青春是一场没有彩排的远行。"],
            ["2023002", "李 四", None, "题目：奋斗\n有人说，奋斗是青春最亮丽的底色。"],
            [None, "王五", "", "我\u200b的作文。"],
        ]
    )
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS)
    assert preview.ok, problem_texts(preview)
    assert [(item.source, item.student_id) for item in preview.items] == [
        ("作文.xlsx 第 2 行", 1),
        ("作文.xlsx 第 3 行", 2),
        ("作文.xlsx 第 4 行", 3),
    ]
    first, second, third = preview.items
    assert first.title == "我的青春"
    assert first.text == "我的青春\n青春是一场没有彩排的远行。"
    assert first.char_count == len("青春是一场没有彩排的远行。")
    assert second.title == "奋斗" and second.student_name == "李四"
    assert third.text == "我的作文。" and third.title is None  # zero-width space stripped
    assert [entry.student_id for entry in preview.missing] == [4]


def test_header_below_a_caption_row_and_english_headers_are_recognised() -> None:
    data = xlsx_bytes([["高三（1）班 期中作文"], [], ["Name", "Student_Number", "Essay"], ["张三", "", "正文。"]])
    preview = parse_essay_upload("essays.xlsx", data, ROSTER, LIMITS)
    assert preview.ok, problem_texts(preview)
    assert preview.items[0].source == "essays.xlsx 第 4 行"


def test_long_title_from_column_is_kept_as_a_labelled_first_line() -> None:
    title = "在时代的洪流中坚守初心，在平凡的岗位上书写不平凡的人生"
    data = xlsx_bytes([["姓名", "题目", "正文"], ["张三", title, "正文第一段。"]])
    item = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS).items[0]
    assert item.title == title
    assert item.text == f"题目：{title}\n正文第一段。"


def test_title_already_in_the_essay_cell_is_not_repeated() -> None:
    data = xlsx_bytes([["姓名", "标题", "作文"], ["张三", "我的青春", "《我的青春》\n正文。"]])
    item = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS).items[0]
    assert item.text == "《我的青春》\n正文。"
    assert item.title == "我的青春"


def test_second_sheet_is_used_when_the_first_has_no_header() -> None:
    data = xlsx_bytes([["说明：请在第二个工作表填写"]], sheets={"二班": [["姓名", "作文"], ["李四", "正文。"]]})
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS)
    assert preview.ok, problem_texts(preview)
    assert preview.items[0].source == "作文.xlsx（工作表“二班”） 第 2 行"


def test_csv_rows_with_quoted_multiline_essays() -> None:
    data = csv_bytes(["姓名,学号,作文", '张三,2023001,"第一段。\n第二段，有逗号。"', ",,", "李四,,正文。"])
    preview = parse_essay_upload("作文.csv", data, ROSTER, LIMITS)
    assert preview.ok, problem_texts(preview)
    assert preview.items[0].text == "第一段。\n第二段，有逗号。"
    assert [item.source for item in preview.items] == ["作文.csv 第 2 行", "作文.csv 第 4 行"]


def test_tab_separated_csv_is_read() -> None:
    data = csv_bytes(["姓名\t作文", "张三\t正文，有逗号。"])
    preview = parse_essay_upload("作文.csv", data, ROSTER, LIMITS)
    assert preview.ok and preview.items[0].text == "正文，有逗号。"


def test_row_with_a_name_and_no_essay_is_an_empty_essay_problem() -> None:
    data = xlsx_bytes([["姓名", "作文"], ["张三", "正文。"], ["李四", "   "], [None, None]])
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS)
    assert not preview.ok
    assert problem_texts(preview) == ["作文.xlsx 第 3 行：作文为空"]
    assert preview.items[1].problems == ["作文为空"]


def test_unknown_student_name_is_a_problem_naming_the_row() -> None:
    data = xlsx_bytes([["姓名", "作文"], ["赵六", "正文。"]])
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS)
    assert not preview.ok
    assert preview.items[0].student_id is None and preview.items[0].student_name == "赵六"
    assert problem_texts(preview) == ["作文.xlsx 第 2 行：名单中没有学生“赵六”"]


def test_student_number_that_belongs_to_someone_else_is_a_problem() -> None:
    data = xlsx_bytes([["姓名", "学号", "作文"], ["张三", "2023002", "正文。"]])
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS)
    assert preview.items[0].student_id is None
    assert problem_texts(preview) == ["作文.xlsx 第 2 行：学号 2023002 在名单中是“李四”，但这一行的姓名是“张三”"]


def test_number_only_rows_match_and_unknown_numbers_are_reported() -> None:
    data = xlsx_bytes([["学号", "作文"], ["2023003", "正文。"], ["2029999", "正文。"]])
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS)
    assert preview.items[0].student_id == 3
    assert problem_texts(preview) == ["作文.xlsx 第 3 行：名单中没有学号为 2029999 的学生"]


def test_roster_without_numbers_matches_by_name_even_if_the_file_has_numbers() -> None:
    roster = [replace(entry, student_number=None) for entry in ROSTER]
    data = xlsx_bytes([["姓名", "学号", "作文"], ["张三", "2023001", "正文。"]])
    preview = parse_essay_upload("作文.xlsx", data, roster, LIMITS)
    assert preview.ok and preview.items[0].student_id == 1


def test_namesakes_need_a_student_number() -> None:
    roster = [*ROSTER, RosterEntry(9, "张三", "2023009")]
    data = xlsx_bytes([["姓名", "学号", "作文"], ["张三", None, "正文。"], ["张三", "2023009", "正文。"]])
    preview = parse_essay_upload("作文.xlsx", data, roster, LIMITS)
    assert problem_texts(preview) == ["作文.xlsx 第 2 行：名单中有 2 位学生叫“张三”，请填写学号以区分"]
    assert preview.items[1].student_id == 9


def test_duplicate_rows_for_one_student_block_both() -> None:
    data = xlsx_bytes([["姓名", "作文"], ["张三", "第一篇。"], ["李四", "正文。"], ["张 三", "第二篇。"]])
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, LIMITS)
    assert not preview.ok
    message = "学生“张三”有 2 份作文（作文.xlsx 第 2 行、作文.xlsx 第 4 行），请只保留一份"
    assert preview.items[0].problems == [message]
    assert preview.items[2].problems == [message]
    assert preview.items[1].problems == []
    assert problem_texts(preview) == [f"作文.xlsx 第 2 行：{message}", f"作文.xlsx 第 4 行：{message}"]


def test_essay_longer_than_the_limit_is_a_problem() -> None:
    limits = replace(LIMITS, max_essay_chars=10)
    data = xlsx_bytes([["姓名", "作文"], ["张三", "一二三四五六七八九十。"], ["李四", "一二三四五六七八九"]])
    preview = parse_essay_upload("作文.xlsx", data, ROSTER, limits)
    assert problem_texts(preview) == [
        "作文.xlsx 第 2 行：作文过长（11 字，上限 10 字），请检查是否把几篇作文放在了一起"
    ]


def test_one_docx_named_after_the_student() -> None:
    preview = parse_essay_upload("2023004-欧阳娜娜_期中作文.docx", docx_bytes(ESSAY), ROSTER, LIMITS)
    assert preview.ok, problem_texts(preview)
    item = preview.items[0]
    assert (item.source, item.student_id, item.student_name) == ("2023004-欧阳娜娜_期中作文.docx", 4, "欧阳娜娜")
    assert item.title == "我的青春"
    assert item.text == ESSAY
    assert item.char_count == len("青春是一场没有彩排的远行。有人说，奋斗是青春最亮丽的底色。")


def test_docx_tables_are_read_in_order() -> None:
    document = docx.Document()
    document.add_paragraph("我的青春")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "第一格。"
    table.cell(0, 1).text = "第二格。"
    document.add_paragraph("结尾。")
    buffer = io.BytesIO()
    document.save(buffer)
    item = parse_essay_upload("张三.docx", buffer.getvalue(), ROSTER, LIMITS).items[0]
    assert item.text == "我的青春\n第一格。\n第二格。\n结尾。"


def test_file_name_with_only_a_student_number_matches() -> None:
    preview = parse_essay_upload("2023002.txt", "正文。".encode(), ROSTER, LIMITS)
    assert preview.ok and preview.items[0].student_name == "李四"


def test_file_name_naming_nobody_is_a_problem() -> None:
    preview = parse_essay_upload("期中作文.txt", "正文。".encode(), ROSTER, LIMITS)
    assert not preview.ok
    assert problem_texts(preview) == [
        "期中作文.txt：文件名“期中作文”中找不到名单里的学生姓名或学号，请把文件命名为“姓名.docx”或“学号-姓名.docx”"
    ]


def test_file_name_with_two_students_is_ambiguous() -> None:
    preview = parse_essay_upload("张三和李四.txt", "正文。".encode(), ROSTER, LIMITS)
    assert problem_texts(preview) == ["张三和李四.txt：文件名中同时出现了 张三、李四，无法确定是哪位学生"]


def test_file_name_number_and_name_disagree() -> None:
    preview = parse_essay_upload("2023001-李四.txt", "正文。".encode(), ROSTER, LIMITS)
    assert problem_texts(preview) == ["2023001-李四.txt：文件名中的学号 2023001 属于“张三”，但文件名中的姓名是“李四”"]


def test_longer_roster_name_wins_over_a_name_it_contains() -> None:
    roster = [*ROSTER, RosterEntry(5, "张三丰", None)]
    preview = parse_essay_upload("张三丰.txt", "正文。".encode(), roster, LIMITS)
    assert preview.ok and preview.items[0].student_id == 5


def test_zip_of_documents_ignores_macos_and_hidden_files() -> None:
    data = zip_bytes(
        {
            "高三1班/张三.docx": docx_bytes(ESSAY),
            "高三1班/2023002-李四.txt": "正文。".encode(),
            "王五/期中作文.txt": "正文。".encode("gb18030"),
            "__MACOSX/高三1班/._张三.docx": b"\x00\x05\x16\x07 resource fork",
            ".DS_Store": b"\x00\x00\x00\x01Bud1",
            "高三1班/~$张三.docx": b"owner file",
            "高三1班/": b"",
        }
    )
    preview = parse_essay_upload("class.zip", data, ROSTER, LIMITS)
    assert preview.ok, problem_texts(preview)
    assert [(item.source, item.student_id) for item in preview.items] == [
        ("class.zip/高三1班/张三.docx", 1),
        ("class.zip/高三1班/2023002-李四.txt", 2),
        ("class.zip/王五/期中作文.txt", 3),  # the folder names the student
    ]


def test_zip_member_paths_written_with_dot_and_backslashes() -> None:
    data = zip_bytes({"./张三.txt": "正文。".encode(), "二班\\李四.txt": "正文。".encode()})
    preview = parse_essay_upload("class.zip", data, ROSTER, LIMITS)
    assert preview.ok
    assert [item.source for item in preview.items] == ["class.zip/张三.txt", "class.zip/二班/李四.txt"]


def test_zip_holding_a_table() -> None:
    data = zip_bytes({"作文.xlsx": xlsx_bytes([["姓名", "作文"], ["张三", "正文。"]])})
    preview = parse_essay_upload("class.zip", data, ROSTER, LIMITS)
    assert preview.ok
    assert preview.items[0].source == "class.zip/作文.xlsx 第 2 行"


def test_duplicate_files_in_a_zip_name_both_sources() -> None:
    data = zip_bytes({"张三.txt": "第一篇。".encode(), "2023001.docx": docx_bytes("第二篇。")})
    preview = parse_essay_upload("class.zip", data, ROSTER, LIMITS)
    assert not preview.ok
    message = "学生“张三”有 2 份作文（class.zip/张三.txt、class.zip/2023001.docx），请只保留一份"
    assert problem_texts(preview) == [f"class.zip/张三.txt：{message}", f"class.zip/2023001.docx：{message}"]


def test_empty_file_in_a_zip_is_an_empty_essay() -> None:
    data = zip_bytes({"张三.txt": b"", "李四.txt": "正文。".encode()})
    preview = parse_essay_upload("class.zip", data, ROSTER, LIMITS)
    assert problem_texts(preview) == ["class.zip/张三.txt：作文为空"]


def test_nested_zip_is_not_opened_but_reported() -> None:
    data = zip_bytes({"张三.txt": "正文。".encode(), "更多.zip": zip_bytes({"李四.txt": "正文。".encode()})})
    preview = parse_essay_upload("class.zip", data, ROSTER, LIMITS)
    assert [item.student_id for item in preview.items] == [1]
    assert problem_texts(preview) == [
        "class.zip/更多.zip：压缩包里的压缩包不会被打开，请解压后把文件直接放进同一个 zip"
    ]


def test_unsupported_and_unreadable_files_in_a_zip_are_problems_not_rejections() -> None:
    data = zip_bytes(
        {
            "张三.txt": "正文。".encode(),
            "李四.doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
            "王五.docx": "其实是文本".encode(),
            "欧阳娜娜.docx": docx_bytes("正文。")[:300],
        }
    )
    preview = parse_essay_upload("class.zip", data, ROSTER, LIMITS)
    assert not preview.ok
    assert [item.student_id for item in preview.items] == [1]
    texts = problem_texts(preview)
    assert texts[0].startswith("class.zip/李四.doc：这个文件是旧版 Word 格式")
    assert texts[1].startswith("class.zip/王五.docx：扩展名是 .docx，但文件内容是纯文本")
    assert texts[2].startswith("class.zip/欧阳娜娜.docx：文件已损坏")


def test_zip_with_nothing_in_it_is_a_problem() -> None:
    preview = parse_essay_upload("class.zip", zip_bytes({"__MACOSX/._x": b"x"}), ROSTER, LIMITS)
    assert not preview.ok
    assert problem_texts(preview) == ["class.zip：没有找到任何作文"]


def test_path_sent_by_old_browsers_is_reduced_to_the_file_name() -> None:
    preview = parse_essay_upload("C:\\fakepath\\张三.txt", "正文。".encode(), ROSTER, LIMITS)
    assert preview.items[0].source == "张三.txt"


def test_docx_text_follows_word_semantics() -> None:
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    mc = 'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    body = (
        '<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t>我的青春</w:t></w:r></w:p>'
        "<w:sdt><w:sdtContent><w:p><w:r><w:t>控件里的正文。</w:t></w:r></w:p></w:sdtContent></w:sdt>"
        "<w:p><w:r><w:t>改</w:t></w:r><w:del><w:r><w:delText>错字</w:delText></w:r></w:del>"
        "<w:ins><w:r><w:t>正后</w:t></w:r></w:ins><w:r><w:tab/><w:t>的句子。</w:t><w:br/><w:t>换行。</w:t></w:r></w:p>"
        "<w:p><w:r><mc:AlternateContent><mc:Choice><w:txbxContent><w:p><w:r><w:t>文本框。</w:t></w:r></w:p>"
        "</w:txbxContent></mc:Choice><mc:Fallback><w:txbxContent><w:p><w:r><w:t>文本框。</w:t></w:r></w:p>"
        "</w:txbxContent></mc:Fallback></mc:AlternateContent></w:r><w:r><w:t>框外。</w:t></w:r></w:p>"
    )
    declaration = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    document_xml = f"{declaration}<w:document {w} {mc}><w:body>{body}</w:body></w:document>"
    data = replace_member(docx_bytes("x"), "word/document.xml", document_xml.encode())
    item = parse_essay_upload("张三.docx", data, ROSTER, LIMITS).items[0]
    # a text box's paragraph follows the paragraph that anchors it
    assert item.text == "我的青春\n控件里的正文。\n改正后\t的句子。\n换行。\n框外。\n文本框。"
