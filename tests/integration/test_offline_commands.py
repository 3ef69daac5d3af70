"""`yuejuan grade` and `yuejuan model check` through the real loading path with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main
from shared.prompts.rubric import load_rubric
from tests.essays import make_essays


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
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["source"] for r in records] == ["e0", "e1", "e2", "blank"]
    rubric = load_rubric("gaokao-national")
    for record in records[:3]:
        assert record["error"] is None
        assert set(record["dimension_scores"]) == {d.key for d in rubric.dimensions}
        assert all(0 <= record["dimension_scores"][d.key] <= d.max for d in rubric.dimensions)
        assert 0 <= record["total"] <= rubric.total
        assert record["model_name"] and record["generated_tokens"] > 0
    assert records[3]["total"] == 0 and records[3]["generated_tokens"] == 0  # blank: no model call


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
