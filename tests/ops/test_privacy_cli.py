"""The privacy commands (`yuejuan purge`, `delete`, `export`) run on shared/ alone: the web app is never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from shared.models import Student, make_engine, make_session_factory
from shared.upload_previews import PREVIEW_TTL_S
from tests.factories.people import rows
from tests.ops.conftest import PeopleFactory

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs the commands in a fresh interpreter, then lists the services.* modules they imported.
SCRIPT = """
import json, sys
import click
from click.testing import CliRunner
from services import ops_commands

group = click.Group()
ops_commands.register(group)
codes = [CliRunner().invoke(group, args, catch_exceptions=False).exit_code for args in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "modules": sorted(m for m in sys.modules if m.startswith("services."))}))
"""


def test_purge_delete_and_export_do_not_import_the_web(
    make_people: PeopleFactory, sqlite_url: str, tmp_path: Path
) -> None:
    sessions: sessionmaker[Session] = make_session_factory(make_engine(sqlite_url))
    data_dir = tmp_path / "data"
    people = make_people(sessions, data_dir)
    expired = people.previews["X"]
    then = expired.stat().st_mtime - PREVIEW_TTL_S - 60
    os.utime(expired, (then, then))
    jia = str(people.person("甲").id)
    out = tmp_path / "export.json"
    commands = [["purge", "--days", "30"], ["export", "student", jia, "--out", str(out)],
                ["delete", "student", jia, "--yes"]]
    env = {**os.environ, "YUEJUAN_DATABASE_URL": sqlite_url, "YUEJUAN_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 0]
    assert [m for m in report["modules"] if m == "services.web" or m.startswith("services.web.")] == []
    assert not expired.exists(), "the purge swept the expired preview"
    assert json.loads(out.read_text(encoding="utf-8"))["student"]["id"] == int(jia)
    assert rows(sessions, Student, Student.id == int(jia)) == []
