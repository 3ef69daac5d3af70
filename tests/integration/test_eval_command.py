"""`yuejuan eval` end to end with the tiny model: a small scored table graded through the production pipeline;
the workbook opens, the figures recompute from the stored rows, and grading is deterministic (run to run and
alone vs in a batch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from services.cli import main
from services.worker.evaluation.command import ROWS_FILE, SUMMARY_FILE, WORKBOOK_FILE, read_rows
from services.worker.evaluation.summary import summarize
from shared.prompts.rubric import load_rubric
from tests.essays import make_essays


def _scored_table(path: Path, count: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["学号", "标题", "作文", "内容", "表达", "发展等级", "总分"])
        for i, essay in enumerate(make_essays(count, seed=41)):
            title, body = essay.split("\n", 1)
            writer.writerow([f"s{i}", title, body, 10 + i, 12, 8 + i, 30 + 2 * i])
    return path


@pytest.fixture()
def model_env(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUEJUAN_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("YUEJUAN_DEVICE", "cpu")


def test_eval_writes_rows_a_summary_that_recomputes_and_a_workbook(model_env: None, tmp_path: Path) -> None:
    table = _scored_table(tmp_path / "set.csv", 4)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", str(table), "--prompt", "以读书为题", "--out", str(out)])
    assert result.exit_code == 0, result.output
    headline = json.loads(result.output.strip().splitlines()[-1])
    assert headline["essays"] == 4 and headline["graded"] + headline["failed"] == 4
    assert headline["rerun_differences"] == 0 and headline["batch_differences"] == 0, "greedy grading is stable"
    assert headline["golden_rules_pass_rate"] == 1.0, "the deterministic rules pass every hand-made case"

    rows = read_rows(out)
    assert [row["key"] for row in rows] == ["s0", "s1", "s2", "s3"]
    assert [row["teacher_scores"]["total"] for row in rows] == [30, 32, 34, 36]
    stored = json.loads((out / SUMMARY_FILE).read_text("utf-8"))
    recomputed = json.loads(json.dumps(summarize(rows, load_rubric("gaokao-national")).as_json(), ensure_ascii=False))
    assert recomputed == stored, "the figures recompute from the stored rows"

    graded = [row for row in rows if row["model"]["failure"] is None]
    total = next(a for a in stored["agreement"] if a["name"] == "total")
    assert total["count"] == len(graded)
    assert total["mean_bias"] == pytest.approx(
        sum(row["model"]["total"] - row["teacher_scores"]["total"] for row in graded) / len(graded))
    assert total["exact"] == pytest.approx(
        sum(row["model"]["total"] == row["teacher_scores"]["total"] for row in graded) / len(graded))

    # every graded row carries the engine's confidence; the buckets count each graded essay once
    assert all(0.0 < row["model"]["confidence"] <= 1.0 for row in graded)
    assert sum(b["essays"] for b in stored["by_confidence"]) == len(graded)

    book = openpyxl.load_workbook(out / WORKBOOK_FILE)
    assert book.sheetnames[:2] == ["概要", "逐篇"]
    assert [r[-1] for r in book["逐篇"].iter_rows(min_row=2, values_only=True)] == [
        row["model"].get("confidence") for row in rows]
    essays = list(book["逐篇"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2], r[3]) for r in essays] == [
        (row["key"], row["teacher_scores"]["total"], row["model"]["total"] if row["model"]["failure"] is None else None)
        for row in rows
    ]
    if graded:
        assert "总分对照" in book.sheetnames and book["总分对照"]._charts, "the scatter chart is there"
    assert (out / ROWS_FILE).stat().st_size > 0


def test_eval_names_a_bad_row_and_writes_nothing(tmp_path: Path) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("学号,作文,总分\n01,正文。,70\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(table), "--prompt", "题", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "bad.csv 第 2 行: 分数 70（total）应为 0 到 60 的整数" in result.output
    assert not (tmp_path / "out").exists()
