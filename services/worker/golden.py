"""The golden set of the deterministic rules: hand-made essays with the findings, deductions and totals that the
analysis and the score composition must produce (data: shared/prompts/golden/rules.yaml).

``run_golden_rules()`` is what ``yuejuan eval`` reports as the golden set's pass rate; the unit tests run each case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import shared.prompts
from services.worker.analysis import analyse, merge_findings
from services.worker.locate import locate_quotes
from services.worker.scoring import compose_score, needs_model
from shared.prompts.rubric import Rubric, load_rubric

logger = logging.getLogger(__name__)

GOLDEN_RULES_FILE = Path(shared.prompts.__file__).resolve().parent / "golden" / "rules.yaml"
_ANALYSIS_KEYS = ("title", "char_count", "blank", "few_sentences", "needs_model")
_EXPECT_KEYS = {*_ANALYSIS_KEYS, "findings", "deductions", "caps", "raw_total", "total"}


@dataclass(frozen=True)
class GoldenCase:
    """One hand-made essay and what the rules must make of it (see the file's header for the keys)."""

    id: str
    about: str
    text: str
    expect: dict[str, Any]
    required_length: int | None = None
    model: dict[str, Any] | None = None


@dataclass
class GoldenFailure:
    case_id: str
    about: str
    problems: list[str]


@dataclass
class GoldenReport:
    """How many cases the rules get right, and what differs in the others."""

    total: int
    passed: int
    failures: list[GoldenFailure] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.total,
            "passed": self.passed,
            "pass_rate": round(self.pass_rate, 4),
            "failures": [{"id": f.case_id, "about": f.about, "problems": f.problems} for f in self.failures],
        }


@dataclass(frozen=True)
class GoldenSet:
    rubric: Rubric
    cases: list[GoldenCase]


def load_golden_set(path: Path | None = None) -> GoldenSet:
    """Read the golden set; a malformed case is an error naming the case, not a failed case."""
    path = path or GOLDEN_RULES_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rubric = load_rubric(str(data.get("rubric", "gaokao-national")))
    unit = str(data.get("filler_unit", ""))
    cases: list[GoldenCase] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.get("cases") or [], start=1):
        case_id = str(raw.get("id") or f"#{number}")
        unknown = set(raw.get("expect") or {}) - _EXPECT_KEYS
        if case_id in seen or unknown or not raw.get("expect"):
            raise ValueError(
                f"{path}: case {case_id}: duplicate id, no expect, or unknown expect keys {sorted(unknown)}"
            )
        seen.add(case_id)
        text = str(raw.get("text") or "")
        if raw.get("filler"):
            text += "\n" + unit * int(raw["filler"])
        cases.append(
            GoldenCase(
                id=case_id, about=str(raw.get("about", "")), text=text, expect=dict(raw["expect"]),
                required_length=raw.get("required_length"), model=raw.get("model"),
            )
        )
    return GoldenSet(rubric, cases)


def _model_answer(rubric: Rubric, model: dict[str, Any]) -> dict[str, Any]:
    """The model's answer in the parsed-answer shape, from a case's scores and quoted errors."""
    answer: dict[str, Any] = {
        dim.key: {"score": int(model["scores"][dim.key]), "band": "", "evidence": []} for dim in rubric.dimensions
    }
    answer["errors"] = [
        {"suggestion": "", "explanation": "", **error} for error in model.get("errors", [])
    ]
    answer["comment"] = ""
    return answer


def check_case(rubric: Rubric, case: GoldenCase) -> list[str]:
    """What the rules produce differently from the case's expectations; empty when the case passes."""
    expect = case.expect
    analysis = analyse(case.text, rubric, case.required_length)
    actual: dict[str, Any] = {
        "title": analysis.title,
        "char_count": analysis.char_count,
        "blank": analysis.is_blank,
        "few_sentences": analysis.few_sentences,
        "needs_model": needs_model(analysis),
    }
    located = []
    score = None
    if case.model is not None:
        answer = _model_answer(rubric, case.model)
        located, _ = locate_quotes(analysis.text, answer["errors"])
        score = compose_score(rubric, analysis, answer, located)
    elif not needs_model(analysis):
        score = compose_score(rubric, analysis, None, [])
    shown = merge_findings(analysis.mechanical_errors, located)
    actual["findings"] = [[f.origin.removeprefix("rule:"), f.original] for f in shown]
    problems = [
        f"{key}: expected {expect[key]!r}, got {actual[key]!r}"
        for key in (*_ANALYSIS_KEYS, "findings")
        if key in expect and expect[key] != actual[key]
    ]
    wants_score = {"deductions", "caps", "raw_total", "total"} & set(expect)
    if wants_score and score is None:
        return [*problems, f"expects {sorted(wants_score)} but the essay needs the model and the case gives no answer"]
    if score is None:
        return problems
    scored: dict[str, Any] = {
        "deductions": {item.rule: item.points for item in score.deductions},
        "raw_total": score.raw_total,
        "total": score.total,
    }
    problems += [
        f"{key}: expected {expect[key]!r}, got {scored[key]!r}"
        for key in ("deductions", "raw_total", "total")
        if key in expect and expect[key] != scored[key]
    ]
    if "caps" in expect:
        words = [str(word) for word in expect["caps"]]
        matched = len(words) == len(score.caps) and all(w in note for w, note in zip(words, score.caps, strict=True))
        if not matched:
            problems.append(f"caps: expected notes containing {words!r} in order, got {score.caps!r}")
    return problems


def run_golden_rules(path: Path | None = None) -> GoldenReport:
    """Run every case of the golden set; the report's ``pass_rate`` is the share of cases with no difference."""
    golden = load_golden_set(path)
    failures = []
    for case in golden.cases:
        problems = check_case(golden.rubric, case)
        if problems:
            failures.append(GoldenFailure(case.id, case.about, problems))
    report = GoldenReport(total=len(golden.cases), passed=len(golden.cases) - len(failures), failures=failures)
    logger.info("golden rules: %d of %d cases pass", report.passed, report.total)
    return report
