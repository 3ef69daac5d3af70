"""``yuejuan eval``: grade a labelled set through the production pipeline and measure it against the teachers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from services.worker.evaluation.runner import EvalRow
from services.worker.evaluation.sets import EvalSetError, LabelledEssay
from services.worker.evaluation.summary import EvalSummary, summarize
from shared.prompts.rubric import Rubric

ROWS_FILE, SUMMARY_FILE, WORKBOOK_FILE, GOLDEN_FILE = "rows.jsonl", "summary.json", "eval.xlsx", "golden.json"


@dataclass(frozen=True)
class EvalOutput:
    rows: list[dict[str, Any]]
    summary: EvalSummary
    directory: Path


def write_outputs(rows: list[EvalRow], rubric: Rubric, directory: Path) -> EvalOutput:
    """rows.jsonl (one essay a line), summary.json (computed from those rows) and eval.xlsx."""
    from services.worker.evaluation.workbook import build_eval_workbook

    directory.mkdir(parents=True, exist_ok=True)
    records = [row.as_json() for row in rows]
    with (directory / ROWS_FILE).open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = summarize(records, rubric)
    (directory / SUMMARY_FILE).write_text(json.dumps(summary.as_json(), ensure_ascii=False, indent=1), "utf-8")
    build_eval_workbook(records, summary, rubric, directory / WORKBOOK_FILE)
    return EvalOutput(records, summary, directory)


def read_rows(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / ROWS_FILE).read_text("utf-8").splitlines() if line.strip()]


def load_set(set_path: Path | None, rubric: Rubric, *, prompt: str | None, assignment: int | None,
             school: int | None, since: datetime | None, until: datetime | None,
             limit: int | None) -> list[LabelledEssay]:
    from services.worker.evaluation.sets import read_acea, read_table, teacher_final_set

    if (set_path is None) == (assignment is None and school is None):
        raise click.UsageError("请给出一个评测集文件/文件夹，或用 --assignment / --school 选取本平台的教师终评")
    if set_path is None:
        from shared.models import make_engine, make_session_factory
        from shared.settings import load_settings

        engine = make_engine(load_settings().resolved_database_url())
        try:
            with make_session_factory(engine)() as session:
                essays = teacher_final_set(session, assignment_id=assignment, school_id=school, since=since,
                                           until=until)
        finally:
            engine.dispose()
    elif set_path.is_dir() and (set_path / "score_ult.json").exists():
        essays = read_acea(set_path)
    else:
        essays = read_table(set_path, rubric, prompt=prompt)
    if not essays:
        raise click.ClickException("评测集里没有作文（本平台的教师终评：所选范围内没有教师改过分的作文）")
    return essays[:limit] if limit else essays


@click.command("eval")
@click.argument("set_path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--task", type=click.Choice(["scoring", "spelling", "sentences", "injection"]), default="scoring",
              show_default=True,
              help="scoring：与教师评分对照；spelling：SIGHAN-15 错别字（含 test15_error/correct.txt 的文件夹）；"
                   "sentences：FCGEC 病句（FCGEC_valid.json）；injection：把注入攻击集（--attacks）逐条放进评测集的"
                   "作文，统计注入后比原文高出双评误差的比例。")
@click.option("--attacks", "attacks_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="injection：注入攻击集 JSON（默认 tests/data/injection/ 下的三个集合，共 137 条）。")
@click.option("--per-essay", type=click.IntRange(1, 40), default=10, show_default=True,
              help="spelling/sentences：每篇短文拼入的句子数。")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="输出文件夹：rows.jsonl、summary.json、eval.xlsx。")
@click.option("--rubric", "rubric_ref", default="gaokao-national", show_default=True,
              help="Rubric id or path to a YAML file.")
@click.option("--prompt", default=None, help="作文题（表格没有“作文题”列时）。")
@click.option("--assignment", type=int, default=None, help="评测本平台某次作业的教师终评（代替评测集文件）。")
@click.option("--school", type=int, default=None, help="评测本平台某校的教师终评（可加 --since/--until）。")
@click.option("--since", type=click.DateTime(), default=None)
@click.option("--until", type=click.DateTime(), default=None)
@click.option("--limit", type=int, default=None, help="只评前 N 篇。")
@click.option("--repeat/--no-repeat", default=True, show_default=True, help="再评一遍，统计前后两次的差异。")
@click.option("--alone/--no-alone", default=True, show_default=True, help="每篇再单独评一遍，统计批量带来的差异。")
def eval_command(
    set_path: Path | None, out_dir: Path, rubric_ref: str, prompt: str | None, assignment: int | None,
    school: int | None, since: datetime | None, until: datetime | None, limit: int | None, repeat: bool,
    alone: bool, task: str = "scoring", per_essay: int = 10, attacks_path: Path | None = None,
) -> None:
    """Grade a labelled set exactly as the workers do and measure the model against the teachers."""
    if task == "injection":
        _injection(set_path, attacks_path, out_dir, rubric_ref, prompt=prompt, assignment=assignment, school=school,
                   since=since, until=until, limit=limit)
        return
    if task != "scoring":
        _detection(task, set_path, out_dir, rubric_ref, limit, per_essay)
        return
    from tqdm import tqdm

    from services.worker.engine import ModelUnavailable
    from services.worker.evaluation.runner import grade_set
    from services.worker.golden import run_golden_rules
    from services.worker.runtime import load_engine
    from shared.prompts.rubric import RubricError, resolve_rubric
    from shared.settings import load_settings

    try:
        rubric = resolve_rubric(rubric_ref)
        essays = load_set(set_path, rubric, prompt=prompt, assignment=assignment, school=school, since=since,
                          until=until, limit=limit)
    except (EvalSetError, RubricError) as exc:
        raise click.ClickException(str(exc)) from exc
    settings = load_settings()
    try:
        engine = load_engine(settings)
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    with tqdm(total=len(essays) * (1 + repeat + alone), unit="篇次", desc="评测") as bar:
        def progress(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        rows = grade_set(engine, essays, rubric, settings.batch_token_budget, repeat=repeat, alone=alone,
                         rubric_ref=rubric_ref, progress=progress)
    output = write_outputs(rows, rubric, out_dir)
    golden = run_golden_rules().as_dict()  # the deterministic rules on the hand-made golden set
    (out_dir / GOLDEN_FILE).write_text(json.dumps(golden, ensure_ascii=False, indent=1), "utf-8")
    for a in output.summary.agreement:
        click.echo(f"{a.name}: QWK {_fmt(a.qwk)}  完全一致 {_fmt(a.exact)}  误差内 {_fmt(a.within_tolerance)}  "
                   f"偏差 {_fmt(a.mean_bias)}  ({a.count} 篇)")
    click.echo(f"结果在 {out_dir}（{ROWS_FILE}、{SUMMARY_FILE}、{WORKBOOK_FILE}）")
    click.echo(f"规则黄金集：{golden['passed']}/{golden['cases']} 通过")
    click.echo(json.dumps({**output.summary.headline(), "golden_rules_pass_rate": golden["pass_rate"]},
                          ensure_ascii=False))


def _detection(task: str, set_path: Path | None, out_dir: Path, rubric_ref: str, limit: int | None,
               per_essay: int) -> None:
    """``--task spelling|sentences``: sentences graded inside short essays (services/worker/evaluation/detection.py)."""
    from services.worker.evaluation.detection_report import run_detection

    if set_path is None:
        raise click.UsageError(f"--task {task} 需要评测集路径（SIGHAN-15 文件夹或 FCGEC 的 JSON 文件）")
    summary = run_detection(task, set_path, out_dir, rubric_ref=rubric_ref, limit=limit,
                            per_essay=per_essay, files=(ROWS_FILE, SUMMARY_FILE, WORKBOOK_FILE))
    click.echo(f"结果在 {out_dir}（{ROWS_FILE}、{SUMMARY_FILE}、{WORKBOOK_FILE}）")
    click.echo(json.dumps(summary.headline(), ensure_ascii=False))


def _injection(set_path: Path | None, attacks_path: Path | None, out_dir: Path, rubric_ref: str, *,
               prompt: str | None, assignment: int | None, school: int | None, since: datetime | None,
               until: datetime | None, limit: int | None) -> None:
    """``--task injection``: the attack set put into the set's essays (services/worker/evaluation/injection_eval.py)."""
    from services.worker.engine import ModelUnavailable
    from services.worker.evaluation.injection_eval import (
        DEFAULT_ATTACKS,
        AttackSetError,
        attack_rows,
        read_attacks,
        summarize_attacks,
        write_attack_outputs,
    )
    from services.worker.jobs import EssayJob
    from services.worker.runtime import load_engine
    from shared.prompts.rubric import RubricError, resolve_rubric
    from shared.settings import load_settings

    try:
        rubric = resolve_rubric(rubric_ref)
        attacks = [attack for path in ([attacks_path] if attacks_path else DEFAULT_ATTACKS)
                   for attack in read_attacks(path)]
        essays = load_set(set_path, rubric, prompt=prompt, assignment=assignment, school=school, since=since,
                          until=until, limit=limit)
    except (EvalSetError, RubricError, AttackSetError) as exc:
        raise click.ClickException(str(exc)) from exc
    # Names to mask where the set carries them (the platform's own essays), as the scoring task masks them.
    jobs = [EssayJob(essay_id=index, text=essay.text, assignment_prompt=essay.prompt, genre=essay.genre,
                     required_length=essay.required_length, rubric_id=rubric_ref, rubric_version=rubric.version,
                     person_names=tuple(getattr(essay, "person_names", ())),
                     school_names=tuple(getattr(essay, "school_names", ())))
            for index, essay in enumerate(essays)]
    try:
        engine = load_engine(load_settings())
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    rows = attack_rows(engine, jobs, attacks, rubric)
    summary = summarize_attacks(rows, rubric)
    write_attack_outputs(rows, summary, out_dir, ROWS_FILE, SUMMARY_FILE)
    click.echo(f"结果在 {out_dir}（{ROWS_FILE}、{SUMMARY_FILE}）")
    click.echo(json.dumps(summary, ensure_ascii=False))


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
