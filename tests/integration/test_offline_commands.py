"""`yuejuan grade` and `yuejuan model check` through the real loading path with the tiny model."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from services.cli import main
from shared.prompts.rubric import load_rubric
from tests.essays import make_essay, make_essays


@pytest.fixture()
def tiny_model_env(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, tmp_path: Path) -> Path:
    for name in ("YUEJUAN_DATABASE_URL", "YUEJUAN_BROKER_URL", "YUEJUAN_ENGINE_CLASS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("YUEJUAN_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("YUEJUAN_DATA_DIR", str(tmp_path / "data"))
    return tiny_model_dir


def test_grade_writes_one_schema_valid_result_per_essay(tiny_model_env: Path, tmp_path: Path) -> None:
    source = tmp_path / "essays.jsonl"
    essays = make_essays(3, seed=11)
    lines = [json.dumps({"id": f"e{i}", "text": text}, ensure_ascii=False) for i, text in enumerate(essays)]
    lines.append(json.dumps({"id": "blank", "text": "空白\n。"}, ensure_ascii=False))
    source.write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(
        main, ["grade", str(source), "--assignment-prompt", "以“读书”为题写一篇议论文。", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    # Lines come in the order batches finish; essay_id is the essay's position in the input.
    records = sorted(_records(out), key=lambda r: r["essay_id"])
    assert [r["source"] for r in records] == ["e0", "e1", "e2", "blank"]
    rubric = load_rubric("gaokao-national")
    for record in records[:3]:
        assert record["error"] is None
        assert set(record["dimension_scores"]) == {d.key for d in rubric.dimensions}
        assert all(0 <= record["dimension_scores"][d.key] <= d.max for d in rubric.dimensions)
        assert 0 <= record["total"] <= rubric.total
        assert record["model_name"] and record["generated_tokens"] > 0
        # the model's own scores next to the final ones (which caps can only lower), and no forced close
        assert set(record["model_scores"]) == set(record["dimension_scores"])
        assert all(record["dimension_scores"][k] <= record["model_scores"][k] for k in record["model_scores"])
        assert record["forced_close"] is False
        assert (record["genre"], record["required_length"], record["labels"]) == ("议论文", 800, {})
    assert records[3]["total"] == 0 and records[3]["generated_tokens"] == 0  # blank: no model call
    assert records[3]["model_scores"] == {}


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _stop_engine_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    """The real engine, loaded the real way, that raises on its batch number ``batches + 1`` (a run stopped)."""
    from services.worker import runtime

    load_engine = runtime.load_engine

    def load(settings: Any) -> Any:
        engine = load_engine(settings)
        generate, calls = engine.generate_json, []

        def generate_json(conversations: Any, schema: Any) -> Any:
            calls.append(len(conversations))
            if len(calls) > batches:
                raise RuntimeError("the run was stopped")
            return generate(conversations, schema)

        engine.generate_json = generate_json
        return engine

    monkeypatch.setattr(runtime, "load_engine", load)


def test_grade_writes_each_batch_at_once_and_resumes_where_it_stopped(
    tiny_model_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "essays.jsonl"
    essays = [make_essay(seed, min_chars=60, max_chars=120) for seed in range(3)]
    source.write_text(
        "".join(json.dumps({"id": f"e{i}", "text": text}, ensure_ascii=False) + "\n" for i, text in enumerate(essays)),
        encoding="utf-8",
    )
    out = tmp_path / "results.jsonl"
    monkeypatch.setenv("YUEJUAN_BATCH_TOKEN_BUDGET", "256")  # one essay per batch
    monkeypatch.setenv("YUEJUAN_MAX_NEW_TOKENS", "400")  # the closing guard cuts the tiny model's answers short
    args = ["grade", str(source), "--assignment-prompt", "以“读书”为题写一篇议论文。", "--out", str(out)]

    with monkeypatch.context() as stopping:
        _stop_engine_after(stopping, batches=1)
        stopped = CliRunner().invoke(main, args)
    assert stopped.exit_code != 0 and "已写入 1 篇" in stopped.output
    (first,) = out.read_text(encoding="utf-8").splitlines()  # the first batch was on disk before the stop
    assert json.loads(first)["forced_close"] is True
    with out.open("a", encoding="utf-8") as torn:  # and a run killed in the middle of writing a line
        torn.write('{"source": "e9", "total": 4')

    resumed = CliRunner().invoke(main, args)
    assert resumed.exit_code == 0, resumed.output
    assert "已有 1 篇" in resumed.output and "已评 2 篇" in resumed.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == first  # not graded again
    assert sorted(json.loads(line)["source"] for line in lines) == ["e0", "e1", "e2"]  # each exactly once

    again = CliRunner().invoke(main, args)  # all done: nothing to grade, the model is not even loaded
    assert again.exit_code == 0 and "跳过 3 篇" in again.output
    assert out.read_text(encoding="utf-8").splitlines() == lines


def test_grade_takes_per_essay_prompt_genre_length_and_labels_from_a_table(
    tiny_model_env: Path, tmp_path: Path
) -> None:
    essay = make_essay(3)
    source = tmp_path / "essays.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "student", "text", "prompt", "genre", "required_length", "label_content", "label_total"])
        writer.writerow(["a", "张三", essay, "以“坚持”为话题写一篇记叙文。", "记叙文", "400", "14", "45.5"])
        writer.writerow(["b", "", essay, "", "", "2000", "", "30"])
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(main, ["grade", str(source), "--assignment-prompt", "默认题目", "--out", str(out)])
    assert result.exit_code == 0, result.output
    a, b = sorted(_records(out), key=lambda r: r["source"])
    assert (a["student"], a["assignment_prompt"], a["genre"], a["required_length"]) == (
        "张三", "以“坚持”为话题写一篇记叙文。", "记叙文", 400
    )
    assert a["labels"] == {"content": 14, "total": 45.5}
    assert (b["student"], b["assignment_prompt"], b["genre"], b["required_length"], b["labels"]) == (
        None, "默认题目", "议论文", 2000, {"total": 30}
    )
    assert a["error"] is None and b["error"] is None
    # the essay's own required length decides the length deduction
    assert "length" not in {d["rule"] for d in a["deductions"]}
    assert "length" in {d["rule"] for d in b["deductions"]}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x", "text": "好文章。", "label_contnet": 12}, "没有叫 contnet 的评分维度"),
        ({"id": "x", "text": "好文章。", "labels": {"total": 61}}, "label_total = 61 不在 0–60 之间"),
        ({"id": "x", "text": "好文章。", "required_length": "八百"}, "required_length 应为数字"),
        ({"id": "x", "text": "好文章。", "promt": "题"}, "未知字段 promt"),
        ({"id": "e0", "text": "好文章。"}, "与"),  # a second e0: resuming goes by id
    ],
)
def test_grade_names_the_bad_row(tmp_path: Path, row: dict[str, Any], message: str) -> None:
    source = tmp_path / "bad.jsonl"
    lines = [{"id": "e0", "text": "好文章。"}, {"text": "好文章。", "labels": {"total": 10}}, row]
    source.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), encoding="utf-8")
    result = CliRunner().invoke(main, ["grade", str(source), "--assignment-prompt", "题", "--out",
                                       str(tmp_path / "o.jsonl")])
    assert result.exit_code != 0 and "第 3 行" in result.output and message in result.output, result.output


def test_grade_without_a_prompt_names_the_row_that_lacks_one(tmp_path: Path) -> None:
    source = tmp_path / "essays.jsonl"
    source.write_text('{"text": "好文章。", "prompt": "题"}\n{"text": "好文章。"}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["grade", str(source), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code != 0 and "第 2 行" in result.output and "--assignment-prompt" in result.output


def test_grade_will_not_resume_over_a_broken_line_before_the_last(tmp_path: Path) -> None:
    source = tmp_path / "essays.jsonl"
    source.write_text('{"id": "a", "text": "好文章。"}\n', encoding="utf-8")
    out = tmp_path / "o.jsonl"
    out.write_text('{"source": "z", "total": 1}\nnot json\n{"source": "y", "total": 2}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["grade", str(source), "--assignment-prompt", "题", "--out", str(out)])
    assert result.exit_code != 0 and "第 2 行" in result.output and "--overwrite" in result.output
    assert out.read_text(encoding="utf-8").count("\n") == 3  # left as it was


def test_grade_reports_a_bad_input_line_by_number(tiny_model_env: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "好"}\nnot json\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["grade", str(source), "--assignment-prompt", "题", "--out",
                                       str(tmp_path / "o.jsonl")])
    assert result.exit_code != 0 and "第 2 行" in result.output


def test_model_check_prints_device_and_a_smoke_grade(tiny_model_env: Path) -> None:
    result = CliRunner().invoke(main, ["model", "check"])
    assert result.exit_code == 0, result.output
    assert "device: cpu" in result.output and "smoke_grade: total=" in result.output


def test_model_check_explains_how_to_provide_a_missing_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("YUEJUAN_MODEL", str(tmp_path / "missing-model"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(main, ["model", "check"])
    assert result.exit_code != 0
    assert "YUEJUAN_MODEL" in result.output and "HF_HUB_OFFLINE=1" in result.output and "modelscope" in result.output
