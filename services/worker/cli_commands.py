"""Worker-side commands: `yuejuan model check` and offline `yuejuan grade` (torch is imported lazily)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

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


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--assignment-prompt", required=True, help="作文题目（题干）。")
@click.option("--rubric", default="gaokao-national", show_default=True, help="Rubric id or path to a YAML file.")
@click.option("--genre", default="议论文", show_default=True)
@click.option("--required-length", type=int, default=800, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--limit", type=int, default=None, help="Grade only the first N essays.")
def grade(
    source: Path, assignment_prompt: str, rubric: str, genre: str, required_length: int, out_path: Path,
    limit: int | None,
) -> None:
    """Grade essays offline (no server) with the same pipeline the workers run; writes JSON lines."""
    from tqdm import tqdm

    from services.worker.engine import ModelUnavailable
    from services.worker.jobs import EssayJob
    from services.worker.offline_input import read_essays
    from services.worker.pipeline import grade_jobs
    from services.worker.runtime import load_engine
    from shared.queueing import plan_batches
    from shared.settings import load_settings

    try:
        essays = read_essays(source)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    essays = essays[:limit] if limit else essays
    settings = load_settings()
    try:
        engine = load_engine(settings)
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    jobs = {
        index: EssayJob(
            essay_id=index, text=essay.text, assignment_prompt=assignment_prompt, genre=genre,
            required_length=required_length, rubric_id=rubric,
        )
        for index, essay in enumerate(essays)
    }
    failures = 0
    with out_path.open("w", encoding="utf-8") as out, tqdm(total=len(jobs), unit="篇", desc="阅卷") as bar:
        results = {}
        for batch in plan_batches([(i, len(job.text)) for i, job in jobs.items()], settings.batch_token_budget):
            for outcome in grade_jobs(engine, [jobs[i] for i in batch]):
                results[outcome.essay_id] = outcome
                failures += outcome.error is not None
            bar.update(len(batch))
        for index, essay in enumerate(essays):
            record = {"source": essay.source, **results[index].as_json()}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    click.echo(f"已评 {len(essays) - failures} 篇，失败 {failures} 篇 → {out_path}")
