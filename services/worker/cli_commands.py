"""Worker-side commands: `yuejuan model check` and offline `yuejuan grade` (torch is imported lazily)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from services.worker.jobs import EssayJob, EssayOutcome
    from services.worker.offline_input import OfflineEssay

SMOKE_ESSAY = (
    "读书的意义\n"
    "读书使人明智。古人说“腹有诗书气自华”，一个人读过的书，会慢慢变成他看世界的眼睛。"
    "在信息爆炸的今天，我们更需要沉下心来读几本好书，而不是只在手机上浏览碎片化的信息。\n"
    "读书也需要方法。只有边读边思考，把书中的道理与生活联系起来，读书才能真正改变我们。"
)


def register(main: click.Group) -> None:
    main.add_command(model)
    main.add_command(grade)


@click.group()
def model() -> None:
    """The grading model."""


@model.command("check")
def model_check() -> None:
    """Load the configured model, print device, dtype and memory, and grade one short essay."""
    from services.worker.engine import ModelUnavailable
    from services.worker.jobs import EssayJob
    from services.worker.pipeline import grade_jobs
    from services.worker.runtime import load_engine
    from shared.settings import load_settings

    settings = load_settings()
    started = time.perf_counter()
    try:
        engine = load_engine(settings)
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    load_s = time.perf_counter() - started
    for key, value in engine.describe().items():
        click.echo(f"{key}: {value}")
    click.echo(f"load_seconds: {load_s:.1f}")
    job = EssayJob(
        essay_id=0, text=SMOKE_ESSAY, assignment_prompt="以“读书”为话题写一篇议论文。", genre="议论文",
        required_length=800, rubric_id="gaokao-national",
    )
    started = time.perf_counter()
    outcome = grade_jobs(engine, [job])[0]
    if outcome.error:
        raise click.ClickException(f"试评失败: {outcome.error}")
    click.echo(f"smoke_grade: total={outcome.total} scores={outcome.dimension_scores} "
               f"seconds={time.perf_counter() - started:.1f} generated_tokens={outcome.generated_tokens}")


@model.command("convert")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The .gguf file to write (default: SOURCE-<quant>.gguf beside SOURCE).")
@click.option("--quant", default="q8_0", show_default=True,
              help="f32, f16, bf16, q8_0 or q4_0 (Q4_K_M: llama.cpp's llama-quantize on this file).")
def model_convert(source: Path, out_path: Path | None, quant: str) -> None:
    """Write a GGUF file for the llama.cpp engine from a local Hugging Face model directory, offline."""
    from services.worker.engine.gguf_convert import ConversionError, convert

    out_path = out_path or source.parent / f"{source.name}-{quant.lower()}.gguf"
    started = time.perf_counter()
    try:
        convert(source, out_path, quant)
    except ConversionError as exc:
        out_path.unlink(missing_ok=True)
        raise click.ClickException(str(exc)) from exc
    size_mb = out_path.stat().st_size / 2**20
    click.echo(f"{out_path}: {size_mb:.1f} MiB, {time.perf_counter() - started:.1f} s; "
               f"YUEJUAN_MODEL={out_path} selects the llama.cpp engine")


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--assignment-prompt", help="作文题目（题干），用于没有 prompt 字段的作文。")
@click.option("--rubric", default="gaokao-national", show_default=True, help="Rubric id or path to a YAML file.")
@click.option("--genre", default="议论文", show_default=True, help="文体，用于没有 genre 字段的作文。")
@click.option("--required-length", type=click.IntRange(min=1), default=800, show_default=True,
              help="字数要求，用于没有 required_length 字段的作文。")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--limit", type=int, default=None, help="Grade only the first N essays.")
@click.option("--overwrite", is_flag=True, help="Start over instead of resuming from an existing --out file.")
@click.option("--retry-failed", is_flag=True, help="When resuming, grade again the essays whose record is a failure.")
def grade(
    source: Path, assignment_prompt: str | None, rubric: str, genre: str, required_length: int, out_path: Path,
    limit: int | None, overwrite: bool, retry_failed: bool,
) -> None:
    """Grade essays offline (no server) with the same pipeline the workers run; writes JSON lines.

    Each batch's results are on disk when the batch finishes; running the same command again skips the essays
    already in --out (by id) and grades the rest. SOURCE: a .txt file, a folder of them, .jsonl, .csv or .xlsx
    (fields: id, student, title, text, prompt, genre, required_length, label_<dimension>, label_total).
    """
    from tqdm import tqdm

    from services.worker.engine import ModelUnavailable
    from services.worker.jobs import EssayJob
    from services.worker.offline_input import read_essays
    from services.worker.offline_output import ResultsFileError, append_batch, recorded_results
    from services.worker.pipeline import cached_rubric, grade_jobs
    from services.worker.runtime import load_engine
    from shared.prompts.rubric import RubricError
    from shared.queueing import plan_batches
    from shared.settings import load_settings

    try:
        rubric_data = cached_rubric(rubric, None)
    except (RubricError, OSError, ValueError) as exc:
        raise click.ClickException(f"评分标准 {rubric}: {exc}") from exc
    maxima = {dim.key: dim.max for dim in rubric_data.dimensions} | {"total": rubric_data.total}
    try:
        essays = read_essays(source, maxima)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    essays = essays[:limit] if limit else essays
    unprompted = next((essay for essay in essays if not (essay.prompt or assignment_prompt)), None)
    if unprompted is not None:
        raise click.ClickException(
            f"{unprompted.where}: 没有 prompt（作文题目）；请在该行填写，或给出 --assignment-prompt"
        )
    if overwrite:
        out_path.unlink(missing_ok=True)
    try:
        done = recorded_results(out_path, drop_failed=retry_failed)
    except ResultsFileError as exc:
        raise click.ClickException(str(exc)) from exc
    todo = {index: essay for index, essay in enumerate(essays) if essay.source not in done}
    if done:
        click.echo(f"续评：{out_path} 中已有 {len(essays) - len(todo)} 篇，跳过")
    failures = graded = 0
    if todo:
        settings = load_settings()
        try:
            engine = load_engine(settings)
        except ModelUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
        jobs = {
            index: EssayJob(
                essay_id=index, text=essay.text, assignment_prompt=essay.prompt or assignment_prompt or "",
                genre=essay.genre or genre, required_length=essay.required_length or required_length,
                rubric_id=rubric,
            )
            for index, essay in todo.items()
        }
        batches = plan_batches([(i, len(job.text)) for i, job in jobs.items()], settings.batch_token_budget)
        with out_path.open("a", encoding="utf-8") as out, tqdm(total=len(jobs), unit="篇", desc="阅卷") as bar:
            try:
                for batch in batches:
                    outcomes = grade_jobs(engine, [jobs[i] for i in batch])
                    append_batch(out, (_record(todo[o.essay_id], jobs[o.essay_id], o) for o in outcomes))
                    graded += len(outcomes)
                    failures += sum(o.error is not None for o in outcomes)
                    bar.update(len(batch))
            except BaseException:
                click.echo(f"阅卷中断：本次已写入 {graded} 篇到 {out_path}；再次运行同一命令从中断处继续", err=True)
                raise
    click.echo(f"已评 {graded - failures} 篇，失败 {failures} 篇，跳过 {len(essays) - len(todo)} 篇 → {out_path}")


def _record(essay: OfflineEssay, job: EssayJob, outcome: EssayOutcome) -> dict[str, Any]:
    """One output line: the essay's key and inputs, the teacher's labels, then the outcome (``model_scores`` are
    the model's own dimension scores, ``dimension_scores`` the final ones after the rubric's caps)."""
    return {
        "source": essay.source,
        "student": essay.student,
        "assignment_prompt": job.assignment_prompt,
        "genre": job.genre,
        "required_length": job.required_length,
        "labels": essay.labels,
        **outcome.as_json(),
    }
