"""The golden set of the deterministic rules: every hand-made case passes, and the runner reports what differs."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.worker.golden import GOLDEN_RULES_FILE, check_case, load_golden_set, run_golden_rules

GOLDEN = load_golden_set()


@pytest.mark.parametrize("case", GOLDEN.cases, ids=[case.id for case in GOLDEN.cases])
def test_golden_case(case) -> None:  # noqa: ANN001 - a GoldenCase
    assert check_case(GOLDEN.rubric, case) == [], case.about


def test_the_golden_set_covers_the_named_bugs_and_ships_with_the_package() -> None:
    ids = {case.id for case in GOLDEN.cases}
    assert len(ids) >= 30
    named_bugs = {"title-only", "stray-quote-also-flagged-by-model", "subheadings-chinese-numerals", "tiji-single-dash"}
    assert named_bugs <= ids
    assert GOLDEN_RULES_FILE.parent.parent.name == "prompts"  # shipped as package data of shared.prompts


def test_run_golden_rules_reports_the_pass_rate() -> None:
    report = run_golden_rules()
    assert report.failures == []
    assert report.as_dict()["pass_rate"] == 1.0 and report.total == len(GOLDEN.cases)


def _write(tmp_path: Path, cases: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(f"rubric: gaokao-national\nfiller_unit: 我们热爱读书与生活。\ncases:\n{cases}", encoding="utf-8")
    return path


def test_a_wrong_expectation_is_a_failure_naming_the_case_and_the_difference(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "  - {id: right, text: 我的青春, expect: {total: 0}}\n"
        "  - {id: wrong, about: 错的期望, text: 我的青春, expect: {total: 1, findings: [[paragraph_end, 春]]}}\n",
    )
    report = run_golden_rules(path)
    assert (report.total, report.passed, report.pass_rate) == (2, 1, 0.5)
    (failure,) = report.failures
    assert failure.case_id == "wrong" and failure.about == "错的期望"
    assert failure.problems == [
        "findings: expected [['paragraph_end', '春']], got []",
        "total: expected 1, got 0",
    ]


def test_a_total_without_a_model_answer_for_an_essay_that_needs_one_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, "  - {id: needs-model, text: 读书, filler: 80, expect: {char_count: 800, total: 40}}\n")
    (failure,) = run_golden_rules(path).failures
    assert "gives no answer" in failure.problems[-1]


@pytest.mark.parametrize(
    "cases",
    [
        "  - {id: a, text: x, expect: {totl: 0}}\n",  # a misspelt key would pass silently
        "  - {id: a, text: x}\n",  # nothing expected
        "  - {id: a, text: x, expect: {total: 0}}\n  - {id: a, text: y, expect: {total: 0}}\n",
    ],
)
def test_a_malformed_case_is_an_error(tmp_path: Path, cases: str) -> None:
    with pytest.raises(ValueError, match="case a"):
        load_golden_set(_write(tmp_path, cases))
