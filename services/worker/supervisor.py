"""Start worker processes: one per visible GPU for the gpu queue (pinned), otherwise one in-process."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys

from shared.settings import Settings

logger = logging.getLogger(__name__)


def visible_gpu_ids(settings: Settings) -> list[str]:
    """GPU ids this node may use, found without initialising CUDA in this (parent) process."""
    if settings.device == "cpu":
        return []
    env_ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env_ids is not None:
        return [gpu for gpu in env_ids.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True)
    except (subprocess.SubprocessError, OSError):
        logger.warning("nvidia-smi failed; assuming no GPU")
        return []
    return [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU ")]


def default_hostname(queues: list[str]) -> str:
    return f"yuejuan-{'-'.join(queues)}-{os.getpid()}@{socket.gethostname()}"


def run_workers(settings: Settings, queues: list[str], hostname: str | None) -> int:
    """Run the workers for `queues` and return an exit code."""
    unknown = set(queues) - {"gpu", "reports", "chat"}
    if unknown or not queues:
        raise SystemExit(f"unknown queue(s): {', '.join(sorted(unknown)) or '(none)'}; use gpu, reports and/or chat")
    gpus = visible_gpu_ids(settings) if "gpu" in queues or "chat" in queues else []
    if len(gpus) <= 1:
        from services.worker.process import run_worker_process

        return run_worker_process(settings, queues, hostname or default_hostname(queues))
    return _supervise_per_gpu(queues, gpus, hostname)


def _supervise_per_gpu(queues: list[str], gpus: list[str], hostname: str | None) -> int:
    children: list[subprocess.Popen[bytes]] = []
    for gpu in gpus:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu)
        name = (hostname or default_hostname(queues)).replace("@", f"-gpu{gpu}@", 1)
        cmd = [sys.executable, "-m", "services.cli", "worker", "--queues", ",".join(queues), "--hostname", name]
        logger.info("starting worker on GPU %s: %s", gpu, name)
        children.append(subprocess.Popen(cmd, env=env))

    def _forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)
