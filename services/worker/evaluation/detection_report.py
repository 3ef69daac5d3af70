"""The figures, files and command of ``yuejuan eval --task spelling|sentences``, computed from the per-sentence rows
only (so summary.json recomputes from rows.jsonl).

spelling (SIGHAN-15): sentence-level detection and correction as the bake-off counts them (with the later
"every flagged sentence" precision beside them) and character-level detection and correction. sentences (FCGEC):
sentence-level 病句 detection, the same with 病句 findings only, and the recall per gold error type. Every
sentence counts; those of a packed essay that failed predicted nothing and are counted as failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from openpyxl import Workbook

from services.worker.evaluation.detection import (
    FCGEC_TYPES,
    SENTENCE_TYPES,
    SPELLING_TYPE,
    STRICT_SENTENCE_TYPE,
    TASKS,
    LabelledSentence,
    Task,
)
from services.worker.evaluation.metrics import (
    DetectionCounts,
    PositionCounts,
    binary_detection,
    recall_by_type,
    sighan_char_level,
    sighan_sentence_level,
)
from services.worker.reports.excel import DECIMAL, HEADER, PERCENT, TITLE, WRAP, SheetBuffer, add_sheet, save_atomically


def _sentence_figures(counts: DetectionCounts) -> dict[str, Any]:
    return {**asdict(counts), "precision": counts.precision, "recall": counts.recall, "f1": counts.f1,
            "false_positive_rate": counts.false_positive_rate, "accuracy": counts.accuracy,
            "flagged_precision": counts.flagged_precision, "flagged_f1": counts.flagged_f1}


def _position_figures(counts: PositionCounts) -> dict[str, Any]:
    return {**asdict(counts), "precision": counts.precision, "recall": counts.recall, "f1": counts.f1}


@dataclass
class DetectionSummary:
    task: str
    sentences: int
    essays: int
    failed_sentences: int
    failures: list[dict[str, Any]]  # one per failed packed essay: its number, reason and sentence keys
    figures: dict[str, dict[str, Any]]  # name → counts and precision/recall/F1 …
    recall_by_type: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> dict[str, Any]:
        """The one-line figures printed at the end of the run."""
        line: dict[str, Any] = {"task": self.task, "sentences": self.sentences, "essays": self.essays,
                                "failed_sentences": self.failed_sentences}
        for name, figures in self.figures.items():
            for measure in ("precision", "recall", "f1"):
                line[f"{name}_{measure}"] = figures[measure]
        if self.recall_by_type:
            line["recall_by_type"] = {name: entry["recall"] for name, entry in self.recall_by_type.items()}
        return line


def _edits(pairs: Sequence[Sequence[Any]]) -> dict[int, str]:
    return {int(position): str(char) for position, char in pairs}


def summarize_detection(task: Task, rows: Sequence[dict[str, Any]]) -> DetectionSummary:
    """``rows`` are ``DetectionRow.as_json()`` records (as written to rows.jsonl)."""
    failures: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row["failure"] is not None:
            failures.setdefault(row["essay"], {"essay": row["essay"], "reason": row["failure"], "keys": []})
            failures[row["essay"]]["keys"].append(row["key"])
    figures: dict[str, dict[str, Any]]
    by_type: dict[str, dict[str, Any]] = {}
    if task == "spelling":
        gold = [_edits(row["gold"]["edits"]) for row in rows]
        predicted = [_edits(row["predicted"]["edits"]) for row in rows]
        figures = {
            "sentence_detection": _sentence_figures(sighan_sentence_level(gold, predicted)),
            "sentence_correction": _sentence_figures(sighan_sentence_level(gold, predicted, correction=True)),
            "char_detection": _position_figures(sighan_char_level(gold, predicted)),
            "char_correction": _position_figures(sighan_char_level(gold, predicted, correction=True)),
        }
    else:
        gold_flags = [bool(row["gold"]["error"]) for row in rows]
        flagged = [bool(row["predicted"]["error"]) for row in rows]
        strict = [STRICT_SENTENCE_TYPE in row["predicted"]["types"] for row in rows]
        figures = {
            "sentence_detection": _sentence_figures(binary_detection(gold_flags, flagged)),
            "sentence_detection_bingju_only": _sentence_figures(binary_detection(gold_flags, strict)),
        }
        recalls = recall_by_type([row["gold"]["types"] for row in rows], flagged)
        by_type = {name: {"name": FCGEC_TYPES.get(name, name), "detected": r.detected, "total": r.total,
                          "recall": r.recall} for name, r in recalls.items()}
    return DetectionSummary(
        task=task, sentences=len(rows), essays=len({row["essay"] for row in rows}),
        failed_sentences=sum(row["failure"] is not None for row in rows), failures=list(failures.values()),
        figures=figures, recall_by_type=by_type,
    )


# --- files ------------------------------------------------------------------------------------------

FIGURE_NAMES = {
    "sentence_detection": "句级检错", "sentence_correction": "句级纠错", "char_detection": "字级检错",
    "char_correction": "字级纠错", "sentence_detection_bingju_only": "句级检错（只计“病句”类）",
}
RULES = {
    "spelling": f"只计“{SPELLING_TYPE}”类的错误；原文摘句与改法等长时逐字对齐，不同的字即一处修改；"
                "不等长时标出被替换或删去的字，不算改对。"
                "句级按 SIGHAN-15 评测：一句的错误位置须与标准完全相同才算检出（纠错还须每个字改对）。",
    "sentences": f"一句中有“{'”“'.join(SENTENCE_TYPES)}”类错误即判为病句（错别字、标点不算）；"
                 f"另列只计“{STRICT_SENTENCE_TYPE}”类的结果。",
}


def write_detection_outputs(task: Task, rows: Sequence[dict[str, Any]], directory: Path, *, rows_file: str,
                            summary_file: str, workbook_file: str) -> DetectionSummary:
    """rows.jsonl (one sentence a line), summary.json (computed from those rows) and the workbook."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / rows_file).open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    summary = summarize_detection(task, rows)
    (directory / summary_file).write_text(json.dumps(summary.as_json(), ensure_ascii=False, indent=1), "utf-8")
    build_detection_workbook(rows, summary, directory / workbook_file)
    return summary


def build_detection_workbook(rows: Sequence[dict[str, Any]], summary: DetectionSummary, path: Path) -> Path:
    workbook = Workbook(write_only=True)
    _overview(add_sheet(workbook, "概要"), summary)
    _sentences(add_sheet(workbook, "逐句"), rows, summary.task)
    return save_atomically(workbook, path)


def _overview(ws: Any, summary: DetectionSummary) -> None:
    sheet = SheetBuffer(ws)
    title = "错别字检测（SIGHAN-15）" if summary.task == "spelling" else "病句检测（FCGEC）"
    sheet.add([f"评测结果：{title}"], TITLE, measure=False)
    sheet.add([RULES[summary.task]], measure=False)
    sheet.blank()
    for label, value in [("句子数", summary.sentences), ("拼成的短文篇数", summary.essays),
                         ("评分失败的句子（计为未检出）", summary.failed_sentences)]:
        sheet.add([label, value])
    sheet.blank()
    sheet.add(["指标", "TP/命中", "FP", "FN", "TN", "精确率", "召回率", "F1"], HEADER)
    for name, f in summary.figures.items():
        if "hits" in f:
            counts = [f["hits"], f["flagged"] - f["hits"], f["gold"] - f["hits"], None]
        else:
            counts = [f["tp"], f["fp"], f["fn"], f["tn"]]
        sheet.add([FIGURE_NAMES.get(name, name), *counts, f["precision"], f["recall"], f["f1"]],
                  styles={5: DECIMAL, 6: DECIMAL, 7: DECIMAL})
    if summary.recall_by_type:
        sheet.blank()
        sheet.add(["错误类型", "名称", "句数", "检出", "召回率"], HEADER)
        for code, entry in summary.recall_by_type.items():
            sheet.add([code, entry["name"], entry["total"], entry["detected"], entry["recall"]], styles={4: PERCENT})
    if summary.failures:
        sheet.blank()
        sheet.add(["评分失败的短文", "原因", "句子"], HEADER)
        for failure in summary.failures:
            sheet.add([failure["essay"], failure["reason"], "、".join(failure["keys"])], styles={1: WRAP, 2: WRAP})
    sheet.write()


def _sentences(ws: Any, rows: Sequence[dict[str, Any]], task: str) -> None:
    sheet = SheetBuffer(ws)
    sheet.add(["编号", "短文", "句子", "标准", "模型", "模型的错误（位置 类型 原文→改法）", "失败原因"], HEADER)
    for row in rows:
        if task == "spelling":
            gold, predicted = _edit_text(row["gold"]["edits"]), _edit_text(row["predicted"]["edits"])
        else:
            gold = ("、".join(row["gold"]["types"]) or "病句") if row["gold"]["error"] else "正确"
            predicted = "、".join(row["predicted"]["types"]) if row["predicted"]["error"] else "正确"
        findings = "；".join(f"{f['start']} {f['type']} {f['original']}→{f['suggestion']}" for f in row["findings"])
        sheet.add([row["key"], row["essay"], row["sentence"], gold, predicted, findings, row["failure"]],
                  styles={2: WRAP, 5: WRAP})
    sheet.write()


def _edit_text(pairs: Sequence[Sequence[Any]]) -> str:
    return "、".join(f"{position}{char or '?'}" for position, char in pairs) or "无"


# --- the command --------------------------------------------------------------------------------------


def run_detection(task_name: str, set_path: Path, out_dir: Path, *, rubric_ref: str, limit: int | None,
                  per_essay: int, files: tuple[str, str, str]) -> DetectionSummary:
    """Read the set, grade it with the configured model and write the files; raises click errors for the CLI."""
    if task_name not in TASKS:
        raise ValueError(f"unknown detection task {task_name!r}; known: {', '.join(TASKS)}")
    task = cast(Task, task_name)
    import click
    from tqdm import tqdm

    from services.worker.engine import ModelUnavailable
    from services.worker.evaluation.detection import grade_sentences, read_detection_set
    from services.worker.evaluation.sets import EvalSetError
    from services.worker.runtime import load_engine
    from shared.prompts.rubric import RubricError, resolve_rubric
    from shared.settings import load_settings

    try:
        rubric = resolve_rubric(rubric_ref)
        sentences: list[LabelledSentence] = read_detection_set(task, set_path)
    except (EvalSetError, RubricError) as exc:
        raise click.ClickException(str(exc)) from exc
    needed = {SPELLING_TYPE} if task == "spelling" else {STRICT_SENTENCE_TYPE}
    if not needed <= set(rubric.error_types):
        raise click.ClickException(f"评分标准 {rubric.id} 的错误类型里没有“{'、'.join(needed)}”，无法评测这一项")
    sentences = sentences[:limit] if limit else sentences
    settings = load_settings()
    try:
        engine = load_engine(settings)
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    with tqdm(total=-(-len(sentences) // per_essay), unit="篇", desc=f"评测 {task}") as bar:
        rows = grade_sentences(engine, task, sentences, rubric_id=rubric_ref, rubric_version=rubric.version,
                               required_length=rubric.required_length, token_budget=settings.batch_token_budget,
                               per_essay=per_essay, progress=lambda done, _total: bar.update(done - bar.n))
    rows_file, summary_file, workbook_file = files
    return write_detection_outputs(task, [row.as_json() for row in rows], out_dir, rows_file=rows_file,
                                   summary_file=summary_file, workbook_file=workbook_file)
