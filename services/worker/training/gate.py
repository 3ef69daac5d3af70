"""The promotion gate: an adapter replaces the active one (or the base model alone) only if it agrees with the
teachers better on the held-out students, by a set margin.

Both are graded through the production pipeline on the same validation essays (``grade_set``, once each, in the
production batches) and summarised by the evaluation code; the gate's figure is the share of validation essays
whose total is within the rubric's double-marking tolerance of the teacher's, an essay that failed to grade
counting as a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.worker.engine import Engine
from services.worker.evaluation.runner import grade_set
from services.worker.evaluation.sets import TOTAL, LabelledEssay
from services.worker.evaluation.summary import summarize
from shared.prompts.rubric import Rubric

GATE_FIGURE = "within_tolerance_share"


def evaluate(engine: Engine, essays: Sequence[LabelledEssay], rubric: Rubric, rubric_ref: str, token_budget: int,
             *, adapter: str | None, adapters_dir: Path) -> dict[str, Any]:
    """The evaluation's headline figures for one adapter (None: the base model) plus the gate's figure."""
    rows = [row.as_json() for row in grade_set(
        engine, essays, rubric, token_budget, repeat=False, alone=False, rubric_ref=rubric_ref, adapter=adapter,
        adapters_dir=adapters_dir,
    )]
    summary = summarize(rows, rubric)
    total = next((a for a in summary.agreement if a.name == TOTAL), None)
    within = round((total.within_tolerance or 0.0) * total.count) if total else 0
    headline = summary.headline()
    return {
        "adapter": adapter, "essays": len(rows), GATE_FIGURE: within / len(rows) if rows else 0.0,
        **{key: headline[key] for key in ("graded", "failed", "qwk_total", "exact_total", "within_tolerance_total",
                                          "mean_bias_total")},
    }


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    candidate: float
    incumbent: float
    margin: float

    def reason(self) -> str:
        verdict = "超过" if self.promote else "未超过"
        return (f"验证集上总分在容差内的比例：新适配器 {self.candidate:.1%}，现用 {self.incumbent:.1%}；"
                f"{verdict}所需幅度 {self.margin:.1%}，{'已启用' if self.promote else '未启用'}。")


def decide(candidate: dict[str, Any], incumbent: dict[str, Any], margin: float) -> GateDecision:
    """Promote only if the candidate's gate figure beats the incumbent's by at least ``margin``."""
    ours, theirs = float(candidate[GATE_FIGURE]), float(incumbent[GATE_FIGURE])
    return GateDecision(promote=ours >= theirs + margin, candidate=ours, incumbent=theirs, margin=margin)
