"""The `yuejuan` command: database, users, web, workers, the embedded all-in-one mode and offline grading."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time

import click

from shared.file_modes import make_private_dir
from shared.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def _settings() -> Settings:
    return load_settings()


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
def main(log_level: str) -> None:
    """阅卷 Yuejuan: batch grading of Chinese essays with a local model."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from shared.file_modes import restrict_umask

    restrict_umask()  # every file the service writes (database, uploads, workbooks, logs) is private to its user


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema (Alembic) on the configured database."""
    from shared.models.migrate import upgrade

    settings = _settings()
    make_private_dir(settings.data_dir)
    url = settings.resolved_database_url()
    upgrade(url, revision)
    click.echo(f"数据库已升级到 {revision}: {_safe_url(url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def user() -> None:
    """User accounts."""


@user.command("create")
@click.option("--username", required=True)
@click.option("--display-name", default=None, help="Defaults to the username.")
@click.option("--role", type=click.Choice(["teacher", "school_admin", "sysadmin"]), default="teacher")
@click.option("--school", "school_name", default=None, help="Name of an existing school.")
@click.option("--create-school", is_flag=True, help="Create the school named by --school if it does not exist.")
@click.password_option()
def user_create(
    username: str, display_name: str | None, role: str, school_name: str | None, create_school: bool, password: str
) -> None:
    """Create a user (teachers and school admins belong to a school)."""
    from sqlalchemy import select

    from shared import audit
    from shared.accounts import AccountError, check_password, clean_username
    from shared.models import Role, School, User, make_engine, make_session_factory, transaction
    from shared.models.org import username_key

    if role != "sysadmin" and not school_name:
        raise click.UsageError("教师和学校管理员必须属于一所学校：请提供 --school")
    try:
        username = clean_username(username)
        password_hash = check_password(password, username)
    except AccountError as exc:
        raise click.UsageError(str(exc)) from exc
    engine = make_engine(_settings().resolved_database_url())
    with transaction(make_session_factory(engine)) as session:
        if session.scalar(select(User).where(User.username_key == username_key(username))):
            raise click.ClickException(f"用户名已存在（不区分大小写）: {username}")
        school = None
        if school_name:
            school_name = school_name.strip()
            school = session.scalar(select(School).where(School.name == school_name))
            if school is None and not create_school:
                known = "、".join(session.scalars(select(School.name).order_by(School.name).limit(20))) or "（还没有）"
                raise click.ClickException(
                    f"没有名为“{school_name}”的学校。已有学校：{known}。"
                    "若确要新建这所学校，请加上 --create-school"
                )
            if school is None:
                school = School(name=school_name)
                session.add(school)
                session.flush()
                audit.record(session, "school.create", actor="cli", object_type="school", object_id=school.id)
        new_user = User(
            username=username, display_name=display_name or username, role=Role(role),
            password_hash=password_hash, school_id=school.id if school else None,
        )
        session.add(new_user)
        session.flush()
        audit.record(session, "user.create", actor="cli", object_type="user", object_id=new_user.id, role=role)
    engine.dispose()
    click.echo(f"已创建用户 {username} ({role})")


@user.command("password")
@click.option("--username", required=True)
@click.password_option(prompt="New password")
def user_password(username: str, password: str) -> None:
    """Set a user's password (policy-checked); every session of the user ends."""
    from sqlalchemy import select

    from shared import audit
    from shared.accounts import AccountError, set_password
    from shared.models import User, make_engine, make_session_factory, transaction
    from shared.models.org import username_key

    engine = make_engine(_settings().resolved_database_url())
    with transaction(make_session_factory(engine)) as session:
        account = session.scalar(select(User).where(User.username_key == username_key(username)))
        if account is None:
            raise click.ClickException(f"没有这个用户: {username}")
        try:
            set_password(account, password)
        except AccountError as exc:
            raise click.UsageError(str(exc)) from exc
        audit.record(session, "user.password_reset", actor="cli", object_type="user", object_id=account.id)
    engine.dispose()
    click.echo(f"已重置 {account.username} 的密码，其所有登录已退出。")


@user.command("token")
@click.option("--username", required=True)
@click.option("--days", type=click.IntRange(1, 3650), default=None, help="Validity (default YUEJUAN_API_TOKEN_DAYS).")
def user_token(username: str, days: int | None) -> None:
    """Create a new API token for a user (rotation: the old one stops working); printed once, only its hash kept."""
    from sqlalchemy import select

    from shared import audit
    from shared.accounts import issue_api_token
    from shared.clock import local_text, people_zone
    from shared.models import User, make_engine, make_session_factory, transaction
    from shared.models.org import username_key

    settings = _settings()
    engine = make_engine(settings.resolved_database_url())
    with transaction(make_session_factory(engine)) as session:
        account = session.scalar(select(User).where(User.username_key == username_key(username)))
        if account is None:
            raise click.ClickException(f"没有这个用户: {username}")
        token = issue_api_token(account, days or settings.api_token_days)
        expires = account.api_token_expires_at
        audit.record(session, "user.api_token", actor="cli", object_type="user", object_id=account.id,
                     expires_at=expires.isoformat() if expires else None)
    engine.dispose()
    until = local_text(expires, people_zone(settings.timezone), "%Y-%m-%d %H:%M") if expires else "—"
    click.echo(f"{account.username} 的新 API 令牌（只显示这一次，旧令牌已失效；"
               f"有效期至 {until}，{settings.timezone} 时间）：")
    click.echo(token)


@main.command()
@click.option("--host", default=None, help="Defaults to YUEJUAN_WEB_HOST.")
@click.option("--port", type=int, default=None, help="Defaults to YUEJUAN_WEB_PORT.")
@click.option("--server", type=click.Choice(["waitress", "gunicorn"]), default="waitress", show_default=True,
              help="gunicorn (Linux, the `web` extra) runs several processes; the Docker image uses it.")
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn processes.")
@click.option("--threads", type=int, default=8, show_default=True)
def web(host: str | None, port: int | None, server: str, workers: int, threads: int) -> None:
    """Serve the web app (waitress, or gunicorn with the same app factory)."""
    from services.web.server import serve_gunicorn, serve_waitress

    settings = _settings()
    host, port = host or settings.web_host, port or settings.web_port
    if server == "gunicorn":
        if importlib.util.find_spec("gunicorn") is None:
            raise click.ClickException("gunicorn 未安装：pip install 'yuejuan[web]'，或使用 --server waitress")
        serve_gunicorn(settings, host, port, workers, threads)
    else:
        serve_waitress(settings, host, port, threads)


@main.command()
@click.option("--queues", default="gpu", show_default=True, help="Comma-separated: gpu (serves chat too), reports.")
@click.option("--hostname", default=None, help="Celery node name (default: yuejuan-<queues>@host).")
def worker(queues: str, hostname: str | None) -> None:
    """Run workers: one process per visible GPU for the gpu queue, one process on CPU."""
    from services.worker.supervisor import run_workers

    sys.exit(run_workers(_settings(), [q.strip() for q in queues.split(",") if q.strip()], hostname))


@main.command()
def up() -> None:
    """Embedded single-machine mode: migrate, start the web app, the workers and beat; stop on Ctrl-C."""
    from shared.models.migrate import upgrade

    settings = _settings()
    make_private_dir(settings.data_dir)
    upgrade(settings.resolved_database_url())
    env = dict(os.environ, YUEJUAN_DATA_DIR=str(settings.data_dir.resolve()))
    exe = [sys.executable, "-m", "services.cli"]
    children = [
        subprocess.Popen([*exe, "web"], env=env),
        subprocess.Popen([*exe, "worker", "--queues", "gpu"], env=env),
        subprocess.Popen([*exe, "worker", "--queues", "reports"], env=env),
        subprocess.Popen([*exe, "beat"], env=env),
    ]
    click.echo(f"阅卷已启动: http://{settings.web_host}:{settings.web_port}/")
    click.echo(f"数据目录: {settings.data_dir.resolve()}  (数据库 {_safe_url(settings.resolved_database_url())})")
    click.echo("没有可加载的模型时网页照常可用：管理员在页面顶部看到如何提供模型，作文在队列中等待，模型就绪后自动评分。")
    click.echo("按 Ctrl-C 停止。")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    while not stopping:
        if any(child.poll() is not None for child in children):
            exit_code = 1
            click.echo("一个子进程意外退出，正在停止其余进程。", err=True)
            break
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    click.echo("已停止。")
    sys.exit(exit_code)


def _register_extra_commands() -> None:
    from services import ops_commands
    from services.worker import cli_commands
    from services.worker.evaluation.command import eval_command
    from services.worker.training.command import train_command

    cli_commands.register(main)
    ops_commands.register(main)
    main.add_command(eval_command)
    main.add_command(train_command)


_register_extra_commands()

if __name__ == "__main__":
    main()
