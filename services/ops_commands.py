"""Operations commands: `yuejuan beat`, `purge`, `delete` and `export` (personal data under PIPL)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shared.settings import load_settings

if TYPE_CHECKING:
    from shared.erasure import Target

logger = logging.getLogger(__name__)

CLI_ACTOR = "cli"
DELETE_TARGETS: dict[str, Target] = {"student": "student", "class": "classroom", "school": "school"}


def register(main: click.Group) -> None:
    main.add_command(beat)
    main.add_command(purge)
    main.add_command(delete)
    main.add_command(export)


def _sessions():  # type: ignore[no-untyped-def]
    from shared.models import make_engine, make_session_factory

    return make_session_factory(make_engine(load_settings().resolved_database_url()))


@click.command()
def beat() -> None:
    """Send scheduled jobs: the nightly retention purge and the stale-queue sweep (run exactly one)."""
    from services.worker.maintenance import beat_schedule
    from shared.celery_app import make_celery

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = make_celery(settings)
    app.conf.update(beat_schedule=beat_schedule(settings), timezone="Asia/Shanghai")
    schedule_file = settings.data_dir / "celerybeat-schedule"
    click.echo(f"定时任务已启动（{', '.join(app.conf.beat_schedule)}），计划文件 {schedule_file}")
    app.Beat(schedule=str(schedule_file), loglevel="INFO", quiet=True).run()


@click.command()
@click.option("--days", type=int, default=None, help="Override YUEJUAN_RETENTION_DAYS for this run.")
def purge(days: int | None) -> None:
    """Delete essays, grades, training plans and reports older than the retention period, and expired upload
    previews, now."""
    from shared.retention import run_retention

    settings = load_settings()
    retention_days = settings.retention_days if days is None else days
    if retention_days <= 0:
        click.echo("未设置保存期限（YUEJUAN_RETENTION_DAYS=0），没有删除任何数据。")
        return
    result = run_retention(_sessions(), settings.data_dir, retention_days, actor=CLI_ACTOR) or {}
    previews = result.pop("upload_previews", 0)
    summary = "，".join(f"{table} {count}" for table, count in result.items()) or "没有到期的数据"
    click.echo(f"已删除 {retention_days} 天前的数据：{summary}；过期上传预览 {previews} 个。")


@click.command()
@click.argument("target", type=click.Choice(sorted(DELETE_TARGETS)))
@click.argument("object_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(target: str, object_id: int, yes: bool) -> None:
    """Erase a student, a class or a school and everything stored about them (rows and files)."""
    from shared.erasure import ErasureRefused, erase

    if not yes:
        click.confirm(f"永久删除 {target} {object_id} 及其全部数据（不可撤销）？", abort=True)
    settings = load_settings()
    try:
        erased = erase(_sessions(), settings.data_dir, DELETE_TARGETS[target], object_id, actor=CLI_ACTOR)
    except ErasureRefused as exc:
        raise click.ClickException(str(exc)) from exc
    if erased is None:
        raise click.ClickException(f"没有编号为 {object_id} 的 {target}")
    summary = "，".join(f"{table} {count}" for table, count in sorted(erased.counts.items()) if count)
    click.echo(f"已删除 {target} {object_id}：{summary}")
    if erased.adapter_ids:
        ids = "、".join(str(adapter_id) for adapter_id in erased.adapter_ids)
        click.echo(f"这些作文曾用于训练模型适配器（编号 {ids}），请重新训练或在“模型适配”页删除。")


@click.group()
def export() -> None:
    """Export personal data."""


@export.command("student")
@click.argument("student_id", type=int)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export_student_command(student_id: int, out_path: Path) -> None:
    """Write everything held about one student to a JSON file (a subject access request); audited."""
    from shared.models import transaction
    from shared.subject_export import export_json, export_student_audited

    with transaction(_sessions()) as session:
        data = export_student_audited(session, student_id, actor=CLI_ACTOR)
        if data is None:
            raise click.ClickException(f"没有编号为 {student_id} 的学生")
        # Only the exporting account may read it: the file holds a minor's essays and grades.
        handle = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(export_json(data))
    click.echo(f"已导出学生 {student_id} 的数据（{len(data['essays'])} 篇作文）→ {out_path}")
