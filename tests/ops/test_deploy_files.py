"""docker-compose.yml, the Dockerfiles, nginx, .env.example and the README, checked without Docker.

Docker does not run on the test machines, so these tests read the files: the compose structure with PyYAML,
the Dockerfiles line by line, and every command against the real `yuejuan` click CLI. Only the last test
asks `docker compose config` to validate the file, and it is skipped (not faked) where compose is missing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from services.cli import main
from shared.settings import Settings
from tests.processes import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
SETTING_NAMES = {f"YUEJUAN_{name.upper()}" for name in Settings.model_fields}
OUR_IMAGES = {"deploy/web.Dockerfile", "deploy/worker.Dockerfile"}
MODEL_PACKAGES = ("torch", "transformers", "accelerate", "xgrammar", "bitsandbytes", "tokenizers")
EXPECTED_SERVICES = {"postgres", "redis", "migrate", "db-roles", "web", "nginx", "worker-gpu", "worker-reports", "beat"}
# Settings the containers fix themselves rather than taking from .env.
FIXED_IN_CONTAINERS = {"YUEJUAN_WEB_HOST", "YUEJUAN_WEB_PORT", "YUEJUAN_PROXY_HOPS"}


def resolve_cli(args: list[str]) -> click.Context:
    """Parse a `yuejuan ...` command line against the real CLI without running it (raises UsageError)."""
    ctx = main.make_context("yuejuan", list(args))
    command: click.Command = main
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, [*getattr(ctx, "_protected_args", []), *ctx.args])
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _dockerfile(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    return build.get("dockerfile") if isinstance(build, dict) else None


def _ours(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if _dockerfile(s) in OUR_IMAGES}


def _depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


# --- docker-compose.yml ----------------------------------------------------------------------------------------


def test_the_stack_has_every_service_with_our_images_where_they_belong(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == EXPECTED_SERVICES
    images = {name: _dockerfile(s) for name, s in services.items()}
    assert images["worker-gpu"] == "deploy/worker.Dockerfile"
    for name in ("migrate", "web", "worker-reports", "beat"):
        assert images[name] == "deploy/web.Dockerfile", f"{name} must use the slim image without torch"
    for name in ("postgres", "redis", "nginx", "db-roles"):
        assert images[name] is None and services[name]["image"]


def test_our_services_run_yuejuan_subcommands_that_exist(services: dict[str, dict[str, Any]]) -> None:
    expected = {"migrate": "yuejuan db upgrade", "web": "yuejuan web", "worker-gpu": "yuejuan worker",
                "worker-reports": "yuejuan worker", "beat": "yuejuan beat"}
    for name, service in _ours(services).items():
        command = service["command"]
        assert isinstance(command, list) and command[0] == "yuejuan", name
        assert resolve_cli(command[1:]).command_path == expected[name], name
    assert resolve_cli(services["web"]["command"][1:]).params["server"] == "gunicorn"
    assert resolve_cli(services["worker-gpu"]["command"][1:]).params["queues"] == "gpu"
    assert resolve_cli(services["worker-reports"]["command"][1:]).params["queues"] == "reports"
    with pytest.raises(click.UsageError):
        resolve_cli(["worker", "--no-such-option"])


def test_healthchecks_and_start_order(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "web", "nginx"):
        assert services[name]["healthcheck"]["test"], f"{name} needs a healthcheck"
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert _depends(services["migrate"]) == {"postgres": "service_healthy"}
    assert _depends(services["db-roles"]) == {"migrate": "service_completed_successfully"}
    for name in ("web", "worker-gpu", "worker-reports", "beat"):
        assert _depends(services[name]) == {"db-roles": "service_completed_successfully", "redis": "service_healthy"}
    assert _depends(services["nginx"]) == {"web": "service_healthy"}
    for name in ("migrate", "db-roles"):
        assert services[name]["restart"] == "no"
    for name, service in services.items():
        for target, condition in _depends(service).items():
            assert target in services and condition in {
                "service_healthy", "service_completed_successfully", "service_started"}, name
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy"


def test_redis_persists_tasks_and_never_evicts_them(services: dict[str, dict[str, Any]]) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "--requirepass" in command


def test_volumes_keep_the_data(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose["volumes"])
    mounts = {name: {v.split(":")[0]: v.split(":")[1] for v in s.get("volumes", [])} for name, s in services.items()}
    assert mounts["postgres"]["pgdata"] == "/var/lib/postgresql/data"
    assert mounts["redis"]["redisdata"] == "/data"
    for name in ("web", "worker-gpu", "worker-reports", "beat"):
        assert mounts[name]["appdata"] == "/data", f"{name} must share the data directory (reports, uploads)"
    for name, sources in mounts.items():
        for source in sources:
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
            elif not source.startswith("$"):
                assert source in declared, f"{name} mounts undeclared volume {source}"


def test_the_gpu_worker_reserves_nvidia_gpus_and_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    [device] = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"] and device["count"] == "all"
    assert "container_name" not in services["worker-gpu"] and "ports" not in services["worker-gpu"]
    environment = services["worker-gpu"]["environment"]
    assert environment["HF_HUB_OFFLINE"] == "1" and environment["YUEJUAN_MODEL"].startswith("${YUEJUAN_MODEL:-/models")
    for name, service in services.items():
        if name != "worker-gpu":
            assert "deploy" not in service, f"{name} must not reserve GPUs"


def test_environment_keys_are_real_settings_and_every_setting_reaches_the_containers(
    services: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        keys = {key for key in service.get("environment", {}) if key.startswith("YUEJUAN_")}
        if name == "nginx":
            assert keys == {"YUEJUAN_MAX_UPLOAD_MB"}
            continue
        assert keys <= SETTING_NAMES, f"{name}: {sorted(keys - SETTING_NAMES)} are not settings"
    for name in ("web", "worker-gpu", "worker-reports", "beat", "migrate"):
        passed = set(services[name]["environment"])
        missing = SETTING_NAMES - FIXED_IN_CONTAINERS - passed
        assert not missing, f"{name} does not pass {sorted(missing)} from .env"


def test_the_app_connects_as_the_restricted_role_and_only_migrate_as_the_owner(
    services: dict[str, dict[str, Any]]
) -> None:
    owner = services["postgres"]["environment"]["POSTGRES_USER"]
    roles = services["db-roles"]["command"]
    app_role = next(arg.split("=", 1)[1] for arg in roles if arg.startswith("app_role="))
    assert next(arg.split("=", 1)[1] for arg in roles if arg.startswith("owner_role=")) == owner
    assert roles[roles.index("-f") + 1] == "/deploy/postgres-roles.sql"
    assert services["migrate"]["environment"]["YUEJUAN_DATABASE_URL"].startswith(f"postgresql+psycopg://{owner}@")
    for name in ("web", "worker-gpu", "worker-reports", "beat"):
        environment = services[name]["environment"]
        assert environment["YUEJUAN_DATABASE_URL"].startswith(f"postgresql+psycopg://{app_role}@"), name
        assert "POSTGRES_PASSWORD}" not in environment["PGPASSWORD"], f"{name} must not get the owner's password"


def test_nginx_fronts_the_web_app_with_the_same_upload_limit(services: dict[str, dict[str, Any]]) -> None:
    web, nginx = services["web"], services["nginx"]
    assert nginx["environment"]["YUEJUAN_MAX_UPLOAD_MB"] == web["environment"]["YUEJUAN_MAX_UPLOAD_MB"]
    [mount] = nginx["volumes"]
    source, target = mount.split(":")[:2]
    assert target == "/etc/nginx/templates/default.conf.template"
    conf = (REPO_ROOT / source).read_text(encoding="utf-8")
    assert re.search(r"client_max_body_size \$\{YUEJUAN_MAX_UPLOAD_MB\}m;", conf)
    port = resolve_cli(web["command"][1:]).params["port"]
    assert f"server web:{port};" in conf and "proxy_pass http://yuejuan_web;" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf, "the client address must not be spoofable"
    assert web["environment"]["YUEJUAN_PROXY_HOPS"] == "1" and "ports" not in web, "only nginx is published"
    assert any(str(p).endswith(":80") for p in nginx["ports"])


# --- Dockerfiles -----------------------------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")
    ]


def _pip_targets(run: str) -> list[str]:
    """The requirement arguments of every `pip install` in a RUN line."""
    targets = []
    for part in run.split("&&"):
        words = shlex.split(part)
        if "pip" in words and "install" in words:
            targets += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return targets


def _extras_requirements(targets: list[str]) -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for target in targets:
        match = re.fullmatch(r"\.(?:\[([\w,]+)\])?", target)
        if match is None:
            requirements.append(target)
            continue
        for extra in filter(None, (match.group(1) or "").split(",")):
            assert extra in project["optional-dependencies"], f"pyproject.toml has no extra {extra!r}"
            requirements += project["optional-dependencies"][extra]
    return requirements


@pytest.mark.parametrize("dockerfile", sorted(OUR_IMAGES))
def test_dockerfiles_copy_what_exists_and_start_a_yuejuan_command(dockerfile: str) -> None:
    instructions = _instructions(REPO_ROOT / dockerfile)
    assert instructions[0][0] == "FROM"
    for op, args in instructions:
        if op == "COPY" and not args.startswith("--from"):
            for source in shlex.split(args)[:-1]:
                assert (REPO_ROOT / source).exists(), f"{dockerfile}: COPY {source} does not exist"
    [cmd] = [args for op, args in instructions if op == "CMD"]
    command = yaml.safe_load(cmd)
    assert isinstance(command, list) and command[0] == "yuejuan", "exec form, a yuejuan subcommand"
    resolve_cli(command[1:])
    assert ("USER", "yuejuan") in instructions, "the app does not run as root"
    assert any("--uid 10001" in args for op, args in instructions if op == "RUN"), "one uid for the shared /data"


def test_the_web_image_installs_no_model_packages_and_the_worker_image_does() -> None:
    def requirements(dockerfile: str) -> list[str]:
        runs = [args for op, args in _instructions(REPO_ROOT / dockerfile) if op == "RUN"]
        return _extras_requirements([t for run in runs for t in _pip_targets(run)])

    web = [re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in requirements("deploy/web.Dockerfile")]
    assert "gunicorn" in web and "prometheus-client" in web
    assert not set(web) & set(MODEL_PACKAGES), f"the web image would install {set(web) & set(MODEL_PACKAGES)}"
    worker = [re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in requirements("deploy/worker.Dockerfile")]
    assert {"torch", "transformers", "xgrammar"} <= set(worker)


# --- .env.example and the README -------------------------------------------------------------------------------


def test_env_example_lists_every_setting_and_every_required_secret() -> None:
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*(YUEJUAN_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert SETTING_NAMES - listed == set(), "settings missing from .env.example"
    assert listed - SETTING_NAMES == set(), ".env.example lists variables that are not settings"
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text(encoding="utf-8")))
    assert required and required <= set(re.findall(r"^([A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_the_readme_configuration_table_has_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    missing = sorted(name for name in SETTING_NAMES if f"`{name}`" not in rows)
    assert missing == [], f"add these to the README configuration table: {missing}"
    assert "## Deployment" in readme


def _compose_command() -> list[str] | None:
    """Docker's compose plugin, or Debian's docker-compose (1.29), whichever answers."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


def test_docker_compose_accepts_the_file() -> None:
    compose = _compose_command()
    if compose is None:
        pytest.skip("docker compose is not installed here; the structural checks above stand in for it")
    env = dict(os.environ, YUEJUAN_SECRET_KEY="x" * 32, POSTGRES_PASSWORD="p", POSTGRES_APP_PASSWORD="a",
               REDIS_PASSWORD="r")
    result = subprocess.run([*compose, "-f", str(COMPOSE), "--env-file", str(REPO_ROOT / ".env.example"),
                             "config", "--quiet"], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
