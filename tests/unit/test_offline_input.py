"""Offline grading's input (every field, every format, errors that name the row) and its results file
(a torn last line is dropped, a broken earlier one is an error, failures can be dropped to be graded again)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from services.worker.offline_input import OfflineEssay, read_essays
from services.worker.offline_output import ResultsFileError, append_batch, recorded_results

MAXIMA = {"content": 20, "expression": 20, "development": 20, "total": 60}
HEADER = ["id", "student", "title", "text", "prompt", "genre", "required_length", "label_content", "label_total"]


def test_jsonl_fields_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    rows = [
        {"id": 7, "student": "李四", "title": "读书", "text": "好文章。", "prompt": "题", "genre": "记叙文",
         "required_length": 600, "labels": {"content": 15}, "label_total": 44.5},
        {"title": "远行", "para": [[["第一句。"], ["第二句。"]], [["第二段。"]]]},  # essays-acea's shape
    ]
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n\n", encoding="utf-8")
    first, second = read_essays(path, MAXIMA)
    assert first == OfflineEssay(
        source="7", text="读书\n好文章。", where=f"{path} 第 1 行", student="李四", prompt="题", genre="记叙文",
        required_length=600, labels={"content": 15, "total": 44.5},
    )
    assert (second.source, second.text, second.prompt, second.labels) == (
        "in.jsonl:2", "远行\n第一句。第二句。\n第二段。", None, {}
    )


def test_csv_and_xlsx_read_the_same_columns(tmp_path: Path) -> None:
    rows = [HEADER, ["a", "张三", "", "好文章。", "题", "", "800", "12", ""], [None] * 9, ["", "", "", "又一篇。"]]
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("\n".join(",".join(str(c or "") for c in row) for row in rows), encoding="utf-8-sig")
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    xlsx_path = tmp_path / "in.xlsx"
    workbook.save(xlsx_path)
    for path in (csv_path, xlsx_path):
        first, second = read_essays(path, MAXIMA)  # the blank row is skipped
        assert (first.source, first.student, first.prompt, first.genre, first.required_length, first.labels) == (
            "a", "张三", "题", None, 800, {"content": 12}
        )
        assert (second.source, second.text, second.where) == (f"{path.name}:4", "又一篇。", f"{path} 第 4 行")


def test_text_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_bytes("第二篇。".encode("gb18030"))
    (tmp_path / "a.txt").write_text("第一篇。", encoding="utf-8")
    assert [(e.source, e.text) for e in read_essays(tmp_path)] == [("a.txt", "第一篇。"), ("b.txt", "第二篇。")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x"}, "缺少 text"),
        ({"text": "  "}, "作文为空"),
        ({"text": "好。", "required_length": 0}, "required_length 应为正整数"),
        ({"text": "好。", "required_length": 800.5}, "required_length 应为正整数"),
        ({"text": "好。", "label_total": "很好"}, "label_total 应为数字"),
        ({"text": "好。", "label_total": True}, "label_total 应为数字"),
        ({"text": "好。", "labels": [1, 2]}, "labels 应为对象"),
        ({"text": "好。", "labels": {"style": 3}}, "没有叫 style 的评分维度"),
        ({"text": "好。", "label_content": 21}, "label_content = 21 不在 0–20 之间"),
        ({"text": "好。", "genre": ["记叙文"]}, "genre 应为文字"),
        ({"text": "好。", "score": 3}, "未知字段 score"),
        ({"id": "a", "text": "好。"}, "重复"),
    ],
)
def test_a_bad_row_is_named(tmp_path: Path, row: dict[str, object], message: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "好。"}) + "\n" + json.dumps(row, ensure_ascii=False), "utf-8")
    with pytest.raises(ValueError, match=f"第 2 行.*{message}"):
        read_essays(path, MAXIMA)


@pytest.mark.parametrize(
    ("header", "message"),
    [(["id", "txt"], "未知的列 txt"), (["id", "title"], "缺少 text 列")],
)
def test_a_bad_header_is_named(tmp_path: Path, header: list[str], message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(",".join(header) + "\n1,好\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"第 1 行（列名）: {message}"):
        read_essays(path)


def test_results_file_resumes_and_repairs_only_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert recorded_results(out) == {}
    with out.open("a", encoding="utf-8") as handle:
        append_batch(handle, [{"source": "a", "error": None}, {"source": "b", "error": "模型输出无效"}])
    whole = out.read_bytes()
    out.write_bytes(whole + b'{"source": "c", "tot')  # stopped while writing c
    assert set(recorded_results(out)) == {"a", "b"}
    assert out.read_bytes() == whole  # the torn line is gone, so the next append starts on a fresh line
    assert set(recorded_results(out, drop_failed=True)) == {"a"}
    assert out.read_text(encoding="utf-8").splitlines() == ['{"source": "a", "error": null}']

    out.write_text('{"source": "a"}\n{"source": \n{"source": "b"}\n', encoding="utf-8")
    with pytest.raises(ResultsFileError, match="第 2 行"):
        recorded_results(out)
