"""Per-process worker state: the database sessions and the model, loaded once after the fork."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.orm import Session, sessionmaker

from shared.models import WorkerStatus, make_engine, make_session_factory, transaction
from shared.models.base import utcnow
from shared.models.db import WORKER_PING_AFTER_IDLE_S
from shared.settings import Settings

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 15.0


class ModelNotLoaded(RuntimeError):
    pass


@dataclass
class _State:
    settings: Settings | None = None
    worker_id: str = ""
    queues: list[str] = field(default_factory=list)
    load_model: bool = False
    sessions: sessionmaker[Session] | None = None
    engine: Any = None
    last_heartbeat: float = float("-inf")  # time.monotonic() of the last one written


_state = _State()


def configure(settings: Settings, *, worker_id: str, queues: list[str], load_model: bool) -> None:
    """Called in the parent before the pool forks; nothing heavy happens here."""
    _state.settings, _state.worker_id, _state.queues, _state.load_model = settings, worker_id, queues, load_model


def settings() -> Settings:
    if _state.settings is None:
        raise RuntimeError("worker runtime not configured")
    return _state.settings


def sessions() -> sessionmaker[Session]:
    if _state.sessions is None:
        url = settings().resolved_database_url()
        _state.sessions = make_session_factory(make_engine(url, ping_after_idle_s=WORKER_PING_AFTER_IDLE_S))
    return _state.sessions


def engine() -> Any:
    if _state.engine is None:
        raise ModelNotLoaded("this worker process has no model loaded")
    return _state.engine


def load_engine(config_settings: Settings) -> Any:
    """Load the configured engine class (the transformers engine unless YUEJUAN_ENGINE_CLASS says otherwise)."""
    from services.worker.engine import EngineConfig, LLMEngine

    engine_cls: Any = LLMEngine
    if config_settings.engine_class:
        module_name, _, attr = config_settings.engine_class.partition(":")
        engine_cls = getattr(importlib.import_module(module_name), attr)
    return engine_cls.load(EngineConfig.from_settings(config_settings))


def record_status(
    state: str, detail: str | None = None, *, model: str | None = None, device: str | None = None,
    memory_mb: int | None = None,
) -> None:
    try:
        with transaction(sessions()) as session:
            row = session.get(WorkerStatus, _state.worker_id)
            if row is None:
                row = WorkerStatus(id=_state.worker_id, queues=",".join(_state.queues), state=state)
                session.add(row)
            row.state, row.detail, row.updated_at = state, detail, utcnow()
            row.model, row.device = model or row.model, device or row.device
            row.memory_mb = memory_mb if memory_mb is not None else row.memory_mb
    except Exception:  # the status record is best effort; the log line below is not
        logger.exception("could not record worker status %s", state)


def model_memory_mb(info: dict[str, Any]) -> int | None:
    """The memory figure of an engine's ``describe()``, if it reports one."""
    value = info.get("memory_mb")
    return int(round(value)) if isinstance(value, int | float) else None


def heartbeat() -> None:
    """After a batch, at most every ``HEARTBEAT_EVERY_S``: refresh this worker's memory figure and timestamp
    (read by /metrics). Short batches come many a minute; one transaction per batch would cost more than
    the batch's claim."""
    if _state.settings is None or _state.engine is None:
        return
    now = time.monotonic()
    if now - _state.last_heartbeat < HEARTBEAT_EVERY_S:
        return
    _state.last_heartbeat = now
    try:
        info = _state.engine.describe()
    except Exception:  # an engine without describe() (or one that fails) still grades
        logger.debug("engine describe() failed", exc_info=True)
        return
    record_status("ready", model=str(info.get("model") or "") or None, device=str(info.get("device") or "") or None,
                  memory_mb=model_memory_mb(info))


def recorded_state() -> str | None:
    """The state this worker last recorded (read back by the parent after the pool has stopped)."""
    try:
        with sessions()() as session:
            row = session.get(WorkerStatus, _state.worker_id)
            return row.state if row else None
    except Exception:
        logger.exception("could not read worker status")
        return None


@worker_process_init.connect
def _init_child(**_: object) -> None:
    if _state.settings is None:
        return
    _state.sessions = None  # never reuse the parent's connections after fork
    if not _state.load_model:
        record_status("ready")
        return
    record_status("loading")
    try:
        _state.engine = load_engine(_state.settings)
    except Exception as exc:
        logger.critical("MODEL COULD NOT BE LOADED, worker stopping; essays stay queued: %s", exc, exc_info=True)
        record_status("failed", f"模型无法加载: {exc}")
        os.kill(os.getppid(), signal.SIGTERM)
        return
    _prepare_default_grammar(_state.engine)
    info = _state.engine.describe()
    logger.info("model loaded: %s", info)
    record_status("ready", model=str(info.get("model")), device=str(info.get("device")),
                  memory_mb=model_memory_mb(info))


def _prepare_default_grammar(engine: Any) -> None:
    """Compile the shipped rubric's answer grammar now (seconds on CPU) rather than in the first batch."""
    from shared.prompts.answer_schema import answer_schema
    from shared.prompts.rubric import load_rubric

    if hasattr(engine, "prepare"):
        engine.prepare(answer_schema(load_rubric("gaokao-national")))


@worker_process_shutdown.connect
def _shutdown_child(**_: object) -> None:
    if _state.settings is not None and _state.engine is not None:
        record_status("stopped")
