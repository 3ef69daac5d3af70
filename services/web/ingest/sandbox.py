"""Run an upload parser in a separate process whose memory and CPU time are capped by the kernel.

The web process hands the upload's bytes to ``python -m services.web.ingest.sandbox`` and waits at most
``parse_wall_seconds``. The child limits its own address space (``RLIMIT_AS``, ``parse_memory_mb``) and
CPU time (``RLIMIT_CPU``, ``parse_cpu_seconds``) before it reads anything, so a hostile upload can cost the
server at most that much, whatever the parser's own caps miss; the web process's memory does not grow.
The child reports its peak resident memory (``VmHWM``) and CPU time with the result.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.web.ingest.errors import UploadRejected
from services.web.ingest.limits import UploadLimits

logger = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parents[3]
_EXIT_MEMORY = 3
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONIOENCODING")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class ParseRun:
    """What the child returned: ``value`` or ``rejection``, and its own peak memory and CPU time."""

    value: Any
    rejection: UploadRejected | None
    peak_rss_bytes: int
    cpu_seconds: float


def run_parser(target: str, args: tuple[Any, ...], limits: UploadLimits, *, upload_name: str) -> ParseRun:
    """Call ``module:function`` with ``args`` in a bounded child process.

    A child that runs out of memory or time is reported as an ``UploadRejected`` naming ``upload_name`` and the
    limit; so is any other crash. ``UploadRejected`` raised by the parser comes back as ``rejection``.
    """
    request = pickle.dumps((target, args, limits.parse_memory_mb, limits.parse_cpu_seconds))
    # the parser needs no secrets: only the search path and the locale travel to it
    env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "services.web.ingest.sandbox"], input=request, capture_output=True,
            timeout=limits.parse_wall_seconds, env=env, cwd=_ROOT, check=False,
        )
    except subprocess.TimeoutExpired:
        logger.warning("upload parse killed after %s s wall time", limits.parse_wall_seconds)
        raise UploadRejected(_too_slow(upload_name, limits.parse_wall_seconds)) from None
    if done.returncode == 0:
        kind, payload, peak_kib, cpu = pickle.loads(done.stdout)
        peak = peak_kib * 1024
        if kind == "value":
            return ParseRun(payload, None, peak, cpu)
        message, details = payload
        return ParseRun(None, UploadRejected(message, details), peak, cpu)
    # the child's stderr may quote the upload (names, essay text): only its length is logged
    logger.warning("upload parse failed with exit status %s (%d bytes on stderr)", done.returncode, len(done.stderr))
    if done.returncode == _EXIT_MEMORY:
        raise UploadRejected(
            f"{upload_name}：解析时需要的内存超过上限 {limits.parse_memory_mb} MB（文件中可能有大量空段落、"
            "空行或异常结构），已拒绝处理"
        )
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise UploadRejected(_too_slow(upload_name, limits.parse_cpu_seconds))
    raise UploadRejected(f"{upload_name}：解析文件时出错，请用 Office 重新保存后上传；如果问题持续请联系管理员")


def parse_bounded(target: str, args: tuple[Any, ...], limits: UploadLimits, *, upload_name: str) -> Any:
    """``run_parser``'s value, raising its rejection."""
    run = run_parser(target, args, limits, upload_name=upload_name)
    if run.rejection is not None:
        raise run.rejection
    return run.value


def _too_slow(upload_name: str, seconds: int) -> str:
    return f"{upload_name}：解析时间超过上限 {seconds} 秒（文件结构异常，例如大量空行或极远的列），已拒绝处理"


def _peak_rss_kib(fallback: int) -> int:
    """This process's peak resident memory since it started: ``VmHWM``. (``ru_maxrss`` survives ``exec`` and
    would report the web process's own size.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return fallback


def _child() -> int:
    target, args, memory_mb, cpu_seconds = pickle.loads(sys.stdin.buffer.read())
    limits = ((resource.RLIMIT_AS, (memory_mb * _MIB, memory_mb * _MIB)),
              (resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1)))
    for limit, values in limits:
        try:
            resource.setrlimit(limit, values)
        except (ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS; the wall-clock limit still holds
            print(f"cannot set resource limit {limit}", file=sys.stderr)
    module_name, function_name = target.split(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        try:
            result: tuple[str, Any] = ("value", function(*args))
        except UploadRejected as exc:
            result = ("rejection", (exc.message, exc.details))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        reply = pickle.dumps((*result, _peak_rss_kib(usage.ru_maxrss), usage.ru_utime + usage.ru_stime))
    except MemoryError:
        os._exit(_EXIT_MEMORY)
    sys.stdout.buffer.write(reply)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
