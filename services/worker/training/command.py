"""``yuejuan train``: the training job on the command line, in this process, with the configured model."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("train")
@click.option("--school", "school_id", type=int, required=True, help="学校编号：用本校教师的终评训练。")
@click.option("--rubric", "rubric_ref", default="gaokao-national", show_default=True,
              help="评分标准（id 或本校评分标准文件路径）；只用这一标准下的作文。")
@click.option("--set", "set_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="另加导入的评分表（.csv/.xlsx，与 yuejuan eval 的格式相同，需每个维度的分数）；可多次给出。")
@click.option("--prompt", default=None, help="评分表没有作文题列时的作文题。")
@click.option("--steps", type=int, default=None, help="优化步数（默认按 --epochs 计算）。")
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=2e-4, show_default=True)
@click.option("--rank", type=int, default=8, show_default=True)
@click.option("--alpha", type=int, default=16, show_default=True)
@click.option("--grad-accum", type=int, default=4, show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--validation", "validation_fraction", type=float, default=0.2, show_default=True,
              help="留作验证的作文比例（按学生划分）。")
@click.option("--gradient-checkpointing", is_flag=True, help="以计算换显存（7B 模型在小显存 GPU 上）。")
def train_command(school_id: int, rubric_ref: str, set_paths: tuple[Path, ...], prompt: str | None,
                  steps: int | None, epochs: int, learning_rate: float, rank: int, alpha: int, grad_accum: int,
                  seed: int, validation_fraction: float, gradient_checkpointing: bool) -> None:
    """Train a LoRA adapter for a school, measure it on held-out students and promote it if it passes the gate."""
    from services.worker.engine import EngineConfig, ModelUnavailable
    from services.worker.runtime import load_engine
    from services.worker.training.dataset import TrainingSetError, table_examples
    from services.worker.training.job import TrainingFailed, run_training_job
    from services.worker.training.params import TrainParams
    from shared.adapters import queue_adapter
    from shared.models import School, make_engine, make_session_factory, transaction
    from shared.prompts.rubric import RubricError, resolve_rubric
    from shared.settings import load_settings

    settings = load_settings()
    params = TrainParams(rank=rank, alpha=alpha, learning_rate=learning_rate, epochs=epochs, max_steps=steps,
                         grad_accum=grad_accum, seed=seed, validation_fraction=validation_fraction,
                         gradient_checkpointing=gradient_checkpointing)
    try:
        rubric = resolve_rubric(rubric_ref)
        extra = [e for path in set_paths for e in table_examples(path, rubric, rubric_ref, prompt=prompt)]
    except (TrainingSetError, RubricError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    sessions = make_session_factory(make_engine(settings.resolved_database_url()))
    try:
        engine = load_engine(settings)
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    config = EngineConfig.from_settings(settings)
    with transaction(sessions) as session:
        if session.get(School, school_id) is None:
            raise click.ClickException(f"没有编号为 {school_id} 的学校")
        adapter_id = queue_adapter(session, school_id, rubric_ref, rubric.version, config.model, params.as_json(),
                                   actor="cli").id

    def show(step: int, total: int, loss: float) -> None:
        click.echo(f"step {step}/{total} loss {loss:.4f}", err=True)

    try:
        card = run_training_job(sessions, engine, adapter_id, config=config, data_dir=settings.data_dir,
                                token_budget=settings.batch_token_budget, margin=settings.adapter_promotion_margin,
                                extra_examples=extra, progress=show)
    except TrainingFailed as exc:
        raise click.ClickException(str(exc)) from exc
    validation = card["validation"]
    data = card["data"]
    click.echo(f"适配器 {card['name']}：训练 {data['train_essays']} 篇，验证 {data['validation_essays']} 篇；"
               f"{'已启用' if validation['promoted'] else '未通过门槛，未启用'}")
    click.echo(json.dumps({"adapter": card["name"], "promoted": validation["promoted"],
                           "candidate": validation["candidate"], "incumbent": validation["incumbent"],
                           "tokens_per_s": card["training"]["tokens_per_s"],
                           "peak_memory_mb": card["training"]["peak_memory_mb"]}, ensure_ascii=False))
