"""The evaluation workbook: the figures, every essay's readings, and charts (model vs teacher, confusion heat map,
bias per band of the teachers' totals). Built only from the rows and their summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.utils import get_column_letter

from services.worker.evaluation.sets import TOTAL
from services.worker.evaluation.summary import EvalSummary, model_reading
from services.worker.reports.charts import add_series, bar_chart
from services.worker.reports.excel import (
    DECIMAL,
    HEADER,
    PERCENT,
    TITLE,
    WRAP,
    SheetBuffer,
    add_sheet,
    save_atomically,
)
from shared.prompts.rubric import Rubric

BAND_WIDTH = 10  # the teachers' totals are grouped in bands of this many points for the bias chart
AGREEMENT_COLUMNS = ["维度", "篇数", "QWK", "完全一致", "相差≤1分", "误差内", "误差(分)", "Pearson", "Spearman",
                     "平均偏差(模型−教师)", "教师均分", "模型均分"]


def build_eval_workbook(rows: Sequence[dict[str, Any]], summary: EvalSummary, rubric: Rubric, path: Path) -> Path:
    workbook = Workbook(write_only=True)
    _overview(add_sheet(workbook, "概要"), summary, rubric)
    _essays(add_sheet(workbook, "逐篇"), rows, rubric)
    graded = [row for row in rows if row["model"]["failure"] is None and TOTAL in row["teacher_scores"]]
    if graded:
        _scatter(add_sheet(workbook, "总分对照"), graded)
        _confusion(add_sheet(workbook, "混淆矩阵"), summary)
        _bias(add_sheet(workbook, "分段偏差"), graded, rubric)
    return save_atomically(workbook, path)


def _overview(ws: Any, summary: EvalSummary, rubric: Rubric) -> None:
    sheet = SheetBuffer(ws)
    sheet.add([f"评测结果：{rubric.name}（{rubric.id} {rubric.version}）"], TITLE, measure=False)
    sheet.blank()
    for label, value, style in [
        ("作文篇数", summary.essays, None), ("评分成功", summary.graded, None), ("评分失败", summary.failed, None),
        ("输出合规率", summary.schema_valid_rate, PERCENT), ("每篇耗时(秒)", summary.seconds_per_essay, DECIMAL),
        ("提示词 token(平均)", summary.prompt_tokens_mean, DECIMAL),
        ("生成 token(平均)", summary.generated_tokens_mean, DECIMAL),
        ("两次评分不同的篇数", summary.rerun_differences, None),
        ("单独评分与批量评分不同的篇数", summary.batch_differences, None),
    ]:
        sheet.add([label, value], styles={1: style} if style else None)
    for label, count in summary.degenerate.items():
        sheet.add([f"异常输出：{label}", count])
    sheet.blank()
    if summary.agreement:
        sheet.add(["与教师评分的一致性"], TITLE, measure=False)
        sheet.add(AGREEMENT_COLUMNS, HEADER)
        for a in summary.agreement:
            sheet.add([_dimension_name(rubric, a.name), a.count, a.qwk, a.exact, a.adjacent, a.within_tolerance,
                       a.tolerance, a.pearson, a.spearman, a.mean_bias, a.teacher_mean, a.model_mean],
                      styles={2: DECIMAL, 3: PERCENT, 4: PERCENT, 5: PERCENT, 7: DECIMAL, 8: DECIMAL, 9: DECIMAL,
                              10: DECIMAL, 11: DECIMAL})
        sheet.blank()
    if any(b.essays for b in summary.by_confidence):
        sheet.add(["按模型置信度分组（总分与教师的一致性；低置信度应对应更多分歧）"], TITLE, measure=False)
        sheet.add(["置信度", "篇数", "误差内比例", "平均绝对差"], HEADER)
        for b in summary.by_confidence:
            sheet.add([b.bucket, b.essays, b.within_tolerance, b.mean_abs_difference], styles={2: PERCENT, 3: DECIMAL})
        sheet.blank()
    if summary.levels:
        note = "等级标签（差/中/好）：模型分数按其余折拟合的分界映射为等级，只在留出折上计算"
        sheet.add([note], TITLE, measure=False)
        sheet.add(["特征", "所用模型分数", "篇数", "QWK", "完全一致", "各折分界（中 / 好 的最低分）"], HEADER)
        for m in summary.levels:
            cutoffs = "；".join(f"第{fold}折 {lo}/{hi}" for fold, (lo, hi) in sorted(m.cutoffs.items()))
            sheet.add([m.trait, _dimension_name(rubric, m.source), m.agreement.count, m.agreement.qwk,
                       m.agreement.exact, cutoffs], styles={3: DECIMAL, 4: PERCENT, 5: WRAP})
        sheet.blank()
    if summary.failures:
        sheet.add(["评分失败的作文"], TITLE, measure=False)
        sheet.add(["编号", "原因"], HEADER)
        for failure in summary.failures:
            sheet.add([failure["key"], failure["reason"]], styles={1: WRAP})
    sheet.write()


def _essays(ws: Any, rows: Sequence[dict[str, Any]], rubric: Rubric) -> None:
    sheet = SheetBuffer(ws)
    keys = [d.key for d in rubric.dimensions]
    sheet.add(["编号", "折", "教师总分", "模型总分", *(f"教师{_dimension_name(rubric, k)}" for k in keys),
               *(f"模型{_dimension_name(rubric, k)}" for k in keys), "教师等级", "重评差异", "单独评分差异",
               "异常输出", "失败原因", "评语", "模型置信度"], HEADER)
    for row in rows:
        model, failed = row["model"], row["model"]["failure"] is not None
        sheet.add([
            row["key"], row["fold"], row["teacher_scores"].get(TOTAL), None if failed else model["total"],
            *(row["teacher_scores"].get(k) for k in keys),
            *((None if failed else model["scores"].get(k)) for k in keys),
            row["teacher_levels"].get(TOTAL), _parts(row["rerun_differs"]), _parts(row["alone_differs"]),
            "、".join(row["degenerate"]), model["failure"], model["comment"], model.get("confidence"),
        ])
    sheet.write()


def _scatter(ws: Any, graded: Sequence[dict[str, Any]]) -> None:
    sheet = SheetBuffer(ws)
    sheet.add(["教师总分", "模型总分"], HEADER)
    for row in graded:
        sheet.add([row["teacher_scores"][TOTAL], model_reading(row, TOTAL)])
    sheet.write()
    chart = ScatterChart()
    chart.title, chart.style, chart.legend = "模型总分与教师总分", 13, None
    chart.x_axis.title, chart.y_axis.title = "教师总分", "模型总分"
    chart.x_axis.delete = chart.y_axis.delete = False
    series = Series(Reference(ws, min_col=2, min_row=2, max_row=len(graded) + 1),
                    Reference(ws, min_col=1, min_row=2, max_row=len(graded) + 1), title="作文")
    series.marker.symbol, series.graphicalProperties.line.noFill = "circle", True
    chart.series.append(series)
    ws.add_chart(chart, "D2")


def _confusion(ws: Any, summary: EvalSummary) -> None:
    total = next(a for a in summary.agreement if a.name == TOTAL)
    sheet = SheetBuffer(ws)
    sheet.add(["教师总分 ＼ 模型总分", *range(total.low, total.high + 1)], HEADER)
    for score, counts in zip(range(total.low, total.high + 1), total.confusion, strict=True):
        sheet.add([score, *counts])
    sheet.write()
    side = total.high - total.low + 2  # the header row/column plus one per score
    ws.conditional_formatting.add(
        f"B2:{get_column_letter(side)}{side}",
        ColorScaleRule(start_type="num", start_value=0, start_color="FFFFFF", end_type="max", end_color="C00000"),
    )


def _bias(ws: Any, graded: Sequence[dict[str, Any]], rubric: Rubric) -> None:
    sheet = SheetBuffer(ws)
    sheet.add(["教师总分段", "篇数", "平均偏差(模型−教师)"], HEADER)
    for low in range(0, rubric.total + 1, BAND_WIDTH):
        high = min(low + BAND_WIDTH - 1, rubric.total)
        gaps = [model_reading(row, TOTAL) - row["teacher_scores"][TOTAL] for row in graded
                if low <= row["teacher_scores"][TOTAL] <= high]
        sheet.add([f"{low}–{high}", len(gaps), sum(gaps) / len(gaps) if gaps else None], styles={2: DECIMAL})
    last = sheet.last_row
    sheet.write()
    chart = add_series(bar_chart("各分数段的平均偏差", "模型−教师(分)", x_title="教师总分段"), ws, 3, 1, last)
    ws.add_chart(chart, "E2")


def _dimension_name(rubric: Rubric, key: str) -> str:
    if key == TOTAL:
        return "总分"
    found = next((d for d in rubric.dimensions if d.key == key), None)
    return found.name if found else key


def _parts(parts: list[str] | None) -> str | None:
    return None if parts is None else ("无" if not parts else "、".join(parts))
