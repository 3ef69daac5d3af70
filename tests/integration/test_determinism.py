"""Determinism with a real tokenizer on real essays: a tiny random model on Qwen2.5's own vocabulary (151,643 BPE
tokens, rebuilt offline by tests/tiny_model.py) grades essays-acea essays through `yuejuan eval`; the same essay
gets the same grade on a rerun and alone as in its batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main
from services.worker.evaluation.command import read_rows
from tests.tiny_model import REAL_VOCABULARY, build_tiny_model

ACEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "essays-acea"


@pytest.mark.slow
def test_acea_essays_grade_the_same_on_a_rerun_and_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (ACEA / "data.json").is_file():
        pytest.skip("essays-acea data set not present")
    model = build_tiny_model(tmp_path / "model", REAL_VOCABULARY)
    monkeypatch.setenv("YUEJUAN_MODEL", str(model))
    monkeypatch.setenv("YUEJUAN_DEVICE", "cpu")
    monkeypatch.setenv("YUEJUAN_MAX_NEW_TOKENS", "400")
    monkeypatch.setenv("YUEJUAN_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["eval", str(ACEA), "--limit", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    headline = json.loads(result.output.strip().splitlines()[-1])
    assert headline["essays"] == 3 and headline["graded"] == 3, headline
    assert headline["rerun_differences"] == 0 and headline["batch_differences"] == 0, headline
    rows = read_rows(out)
    assert all(row["rerun_differs"] == [] and row["alone_differs"] == [] for row in rows)
    assert len({row["model"]["prompt_tokens"] for row in rows}) == 3, "real essays of different lengths, one batch"
