"""The commands the images run, started as real processes: `yuejuan web --server gunicorn` and `yuejuan beat`."""

from __future__ import annotations

import signal
import sys
import urllib.request
from pathlib import Path

import pytest

from shared.models.migrate import upgrade
from tests.processes import ManagedProcess, free_port, wait_for, worker_env

pytestmark = pytest.mark.processes


def _get(url: str) -> tuple[int, dict[str, str]] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, dict(response.headers)
    except OSError:
        return None


def test_gunicorn_serves_the_app_factory_and_stops_on_sigterm(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn", reason="the `web` extra is not installed")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    upgrade(f"sqlite:///{data_dir / 'yuejuan.sqlite'}")
    port = free_port()
    env = worker_env(data_dir=str(data_dir))
    cmd = [sys.executable, "-m", "services.cli", "web", "--server", "gunicorn", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "2", "--threads", "2"]
    web = ManagedProcess(cmd, env, tmp_path / "web.log").start()
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") is not None, timeout=60, what="gunicorn")
        answer = _get(f"http://127.0.0.1:{port}/healthz")
        assert answer is not None and answer[0] == 200 and answer[1]["Server"].startswith("gunicorn")
        metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert metrics is not None and metrics[0] == 200
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{web.log()[-4000:]}") from None
    finally:
        assert web.proc is not None
        web.proc.send_signal(signal.SIGTERM)
        code = web.proc.wait(timeout=60)
    assert code == 0, web.log()[-4000:]
    assert "Booting worker" in web.log()


def test_beat_starts_with_its_schedule_and_stops_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = worker_env(data_dir=str(data_dir))
    beat = ManagedProcess([sys.executable, "-m", "services.cli", "beat"], env, tmp_path / "beat.log").start()
    try:
        wait_for(lambda: "beat: Starting" in beat.log() and any(data_dir.glob("celerybeat-schedule*")),
                 timeout=60, what="beat to start")
        assert "purge-expired" in beat.log() and "requeue-stale" in beat.log()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{beat.log()[-4000:]}") from None
    finally:
        assert beat.proc is not None
        beat.proc.send_signal(signal.SIGTERM)
        code = beat.proc.wait(timeout=30)
    assert code == 0, beat.log()[-4000:]
