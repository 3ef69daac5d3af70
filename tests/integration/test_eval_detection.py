"""`yuejuan eval --task spelling|sentences` end to end with the tiny model on hand-made SIGHAN- and FCGEC-format
files: a row per sentence, a summary that recomputes from the rows, a workbook that opens, one JSON line."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from services.cli import main
from services.worker.evaluation.command import SUMMARY_FILE, WORKBOOK_FILE, read_rows
from services.worker.evaluation.detection_report import summarize_detection

WRONG = ["我跟我朋唷打算去法国玩儿。", "你好！我是张爱文。", "他以经走了，我很难过。", "我们在学校里学习中文。",
         "这个东西很贵，我卖不起。", "　　今天是２０１５年的第一天。", "我想再见到你。"]
RIGHT = ["我跟我朋友打算去法国玩儿。", "你好！我是张爱文。", "他已经走了，我很难过。", "我们在学校里学习中文。",
         "这个东西很贵，我买不起。", "　　今天是２０１５年的第一天。", "我想再见到你。"]
FCGEC = {
    "f1": {"sentence": "通过这次活动，使我们受到了深刻的教育。", "error_flag": 1, "error_type": "CM"},
    "f2": {"sentence": "他的成绩在班里名列前茅。", "error_flag": 0, "error_type": "*"},
    "f3": {"sentence": "大约有十个左右的同学参加了比赛。", "error_flag": 1, "error_type": "CR"},
    "f4": {"sentence": "我们要认真改进学习方法和态度。", "error_flag": 1, "error_type": "IWC;CM"},
    "f5": {"sentence": "春天的公园里开满了五颜六色的花。", "error_flag": 0, "error_type": "*"},
}


@pytest.fixture()
def model_env(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUEJUAN_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("YUEJUAN_DEVICE", "cpu")


def _run(*args: str) -> dict:
    result = CliRunner().invoke(main, ["eval", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _recomputes(task: str, out: Path) -> list[dict]:
    rows = read_rows(out)
    stored = json.loads((out / SUMMARY_FILE).read_text("utf-8"))
    assert json.loads(json.dumps(summarize_detection(task, rows).as_json())) == stored, "recomputes from the rows"
    book = openpyxl.load_workbook(out / WORKBOOK_FILE)
    assert book.sheetnames == ["概要", "逐句"]
    listed = list(book["逐句"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2]) for r in listed] == [(row["key"], row["sentence"]) for row in rows]
    return rows


def test_spelling_on_sighan_format_files(model_env: None, tmp_path: Path) -> None:
    sighan = tmp_path / "sighan15"
    sighan.mkdir()
    (sighan / "test15_error.txt").write_text("\n".join(WRONG) + "\n", "utf-8")
    (sighan / "test15_correct.txt").write_text("\n".join(RIGHT) + "\n", "utf-8")
    out = tmp_path / "out"
    line = _run("--task", "spelling", str(sighan), "--out", str(out), "--per-essay", "4", "--limit", "6")
    assert line["task"] == "spelling" and line["sentences"] == 6 and line["essays"] == 2
    for name in ("sentence_detection", "sentence_correction", "char_detection", "char_correction"):
        assert {f"{name}_precision", f"{name}_recall", f"{name}_f1"} <= set(line)
    rows = _recomputes("spelling", out)
    assert [row["key"] for row in rows] == [f"test15_error:{i}" for i in range(1, 7)]
    assert [row["gold"]["edits"] for row in rows] == [[[4, "友"]], [], [[1, "已"]], [], [[8, "买"]], []]
    for row in rows:
        for finding in row["findings"]:
            assert 0 <= finding["start"] <= finding["end"] <= len(row["sentence"])
    assert line["failed_sentences"] == sum(row["failure"] is not None for row in rows)


def test_sentences_on_fcgec_format_file(model_env: None, tmp_path: Path) -> None:
    path = tmp_path / "FCGEC_valid.json"
    path.write_text(json.dumps(FCGEC, ensure_ascii=False), "utf-8")
    out = tmp_path / "out"
    line = _run("--task", "sentences", str(path), "--out", str(out), "--per-essay", "3")
    assert line["task"] == "sentences" and line["sentences"] == 5 and line["essays"] == 2
    assert set(line["recall_by_type"]) == {"CM", "CR", "IWC"}
    rows = _recomputes("sentences", out)
    assert [row["key"] for row in rows] == list(FCGEC)
    assert [row["gold"] for row in rows] == [
        {"error": True, "types": ["CM"]}, {"error": False, "types": []}, {"error": True, "types": ["CR"]},
        {"error": True, "types": ["CM", "IWC"]}, {"error": False, "types": []}]
    for row in rows:
        assert row["predicted"]["error"] == bool(row["predicted"]["types"])


def test_a_detection_task_needs_a_set_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--task", "spelling", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "--task spelling 需要评测集路径" in result.output
