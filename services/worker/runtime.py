"""Per-process worker state: the database sessions and the model, loaded once after the fork."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from services.worker.engine import Engine, EngineConfig
from services.worker.engine.interface import engine_class_for
from shared.models import WorkerStatus, make_engine, make_session_factory, transaction
from shared.models.base import utcnow
from shared.models.db import WORKER_PING_AFTER_IDLE_S
from shared.settings import Settings
from shared.worker_health import FORGET_AFTER, WorkerState

logger = logging.getLogger(__name__)


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
    state: str = ""  # what this process last recorded
    last_heartbeat: float = float("-inf")  # time.monotonic() of the last write of the row
    beat_lock: threading.Lock = field(default_factory=threading.Lock)
    beat_stop: threading.Event | None = None


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


def load_engine(config_settings: Settings) -> Engine:
    """Load the configured engine class (``engine_class_for``: YUEJUAN_ENGINE_CLASS, YUEJUAN_ENGINE, or the model
    path's .gguf suffix); its module, and the model libraries it needs, are imported here."""
    module_name, _, attr = engine_class_for(config_settings).partition(":")
    engine_cls: type[Engine] = getattr(importlib.import_module(module_name), attr)
    return engine_cls.load(EngineConfig.from_settings(config_settings))


def _upsert_status(session: Session, values: dict[str, Any], *, keep_when_missing: tuple[str, ...] = ()) -> None:
    """INSERT ... ON CONFLICT (id) DO UPDATE, one statement on PostgreSQL and SQLite: two processes writing the
    same id at once (the pool children of one worker, a restart under the same hostname) cannot collide, as a
    read-then-insert did. Columns in ``keep_when_missing`` keep their stored value when the new one is None."""
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:
        raise ValueError(f"no upsert for the {dialect} dialect")
    statement = _INSERTS[dialect](WorkerStatus).values(**values)
    columns = WorkerStatus.__table__.c
    changes = {
        name: func.coalesce(statement.excluded[name], columns[name]) if name in keep_when_missing
        else statement.excluded[name]
        for name in values if name != "id"
    }
    session.execute(statement.on_conflict_do_update(index_elements=[columns.id], set_=changes))


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def record_status(
    state: str, detail: str | None = None, *, model: str | None = None, device: str | None = None,
    memory_mb: int | None = None,
) -> None:
    """Write this worker's state (and a beat with it); best effort: a database outage is logged, not raised."""
    _state.state = state
    _state.last_heartbeat = time.monotonic()
    values = {
        "id": _state.worker_id, "queues": ",".join(_state.queues), "state": state, "detail": detail,
        "model": model, "device": device, "memory_mb": memory_mb, "updated_at": utcnow(),
    }
    try:
        with transaction(sessions()) as session:
            _upsert_status(session, values, keep_when_missing=("model", "device", "memory_mb"))
    except Exception:  # the status record is best effort; the log line below is not
        logger.exception("could not record worker status %s", state)


def model_memory_mb(info: dict[str, Any]) -> int | None:
    """The memory figure of an engine's ``describe()``, if it reports one."""
    value = info.get("memory_mb")
    return int(round(value)) if isinstance(value, int | float) else None


def heartbeat() -> None:
    """Write this process's beat if one is due (``worker_heartbeat_s`` since the last write).

    The beat thread calls it on that clock, idle or busy; the grading task calls it after a batch, which
    refreshes the memory figure right after the model ran and moves the thread's next write along. Either
    way a process writes at most one small transaction per interval.
    """
    if _state.settings is None or not _state.beat_lock.acquire(blocking=False):
        return  # not a worker process, or the other caller is writing this beat right now
    try:
        now = time.monotonic()
        if now - _state.last_heartbeat < _state.settings.worker_heartbeat_s:
            return
        _state.last_heartbeat = now
        _write_beat()
    except Exception as exc:  # a missed beat only makes the worker look lost for a while
        logger.warning("could not write the worker heartbeat: %s", exc)
    finally:
        _state.beat_lock.release()


def _write_beat() -> None:
    """Refresh ``updated_at`` (and the model's memory figure) without touching the recorded state."""
    values: dict[str, Any] = {"updated_at": utcnow()}
    if _state.engine is not None:
        try:
            info = _state.engine.describe()
        except Exception:  # an engine without describe() (or one that fails) still grades
            logger.debug("engine describe() failed", exc_info=True)
        else:
            memory_mb = model_memory_mb(info)
            if memory_mb is not None:
                values["memory_mb"] = memory_mb
            values.update({key: str(info[key]) for key in ("model", "device") if info.get(key)})
    with transaction(sessions()) as session:
        found = session.execute(
            update(WorkerStatus).where(WorkerStatus.id == _state.worker_id).values(**values)
        ).rowcount
        if not found:  # deleted by a clean-up, or never written while the database was down
            _upsert_status(session, {
                "id": _state.worker_id, "queues": ",".join(_state.queues), "state": _state.state or WorkerState.ready,
                **values,
            })


def _beat_forever(stop: threading.Event) -> None:
    every_s = settings().worker_heartbeat_s
    while not stop.wait(max(0.0, _state.last_heartbeat + every_s - time.monotonic())):
        heartbeat()


def _start_beating() -> None:
    """A daemon thread in this pool child (started after the fork: threads do not survive one).

    The child, not the Celery parent's timer, beats because the child is what does the work: its beat
    proves the process holding the model (or building workbooks) is alive, also while it loads a model for
    minutes and while a long batch runs (the model releases the GIL); a parent beating for a hung or dead
    child would make that child look ready.
    """
    stop = threading.Event()
    _state.beat_stop = stop
    threading.Thread(target=_beat_forever, args=(stop,), name="worker-heartbeat", daemon=True).start()


@contextmanager
def _own_sessions() -> Iterator[sessionmaker[Session]]:
    """Sessions on an engine of their own, disposed after use: the parent must not leave open connections
    for the pool children it forks to inherit."""
    engine = make_engine(settings().resolved_database_url())
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def forget_dead_workers(now: datetime | None = None) -> int:
    """In the parent at start: delete status rows nobody has written for ``FORGET_AFTER`` (dead or stopped
    workers of earlier runs); returns how many."""
    cutoff = (now or utcnow()) - FORGET_AFTER
    try:
        with _own_sessions() as own, transaction(own) as session:
            gone = session.execute(delete(WorkerStatus).where(WorkerStatus.updated_at < cutoff)).rowcount
    except Exception:
        logger.exception("could not delete old worker status rows")
        return 0
    if gone:
        logger.info("deleted %s worker status rows not written for %s", gone, FORGET_AFTER)
    return int(gone)


def mark_stopped() -> str | None:
    """In the parent after the pool has stopped: a clean stop is recorded as ``stopped`` (a failed model load
    stays ``failed``); returns the state the row ends in, None if it cannot be read."""
    try:
        with _own_sessions() as own, transaction(own) as session:
            session.execute(
                update(WorkerStatus)
                .where(WorkerStatus.id == _state.worker_id, WorkerStatus.state != WorkerState.failed)
                .values(state=WorkerState.stopped, updated_at=utcnow())
            )
            return session.scalar(select(WorkerStatus.state).where(WorkerStatus.id == _state.worker_id))
    except Exception:
        logger.exception("could not record that worker %s stopped", _state.worker_id)
        return None


@worker_process_init.connect
def _init_child(**_: object) -> None:
    if _state.settings is None:
        return
    _state.sessions = None  # never reuse the parent's connections after fork
    if not _state.load_model:
        record_status(WorkerState.ready)
        _start_beating()
        return
    record_status(WorkerState.loading)
    _start_beating()  # a model takes minutes to load; a loading worker is not a lost one
    _state.engine = _load_until_loaded(_state.settings)
    if _state.engine is None:
        os.kill(os.getppid(), signal.SIGTERM)
        return
    _prepare_default_grammar(_state.engine)
    info = _state.engine.describe()
    logger.info("model loaded: %s", info)
    record_status(WorkerState.ready, model=str(info.get("model")), device=str(info.get("device")),
                  memory_mb=model_memory_mb(info))


def _load_until_loaded(config_settings: Settings) -> Any:
    """Load the model, trying again every ``model_retry_s`` while it cannot be (weights still being copied in, a
    wrong path fixed by the admin): this process takes no task meanwhile, so essays wait in the queue, and its row
    says why. None (the worker then stops) only when ``model_retry_s`` is 0."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return load_engine(config_settings)
        except Exception as exc:
            retry_s = config_settings.model_retry_s
            if retry_s <= 0:
                logger.critical("MODEL COULD NOT BE LOADED, worker stopping; essays stay queued: %s", exc,
                                exc_info=True)
                record_status(WorkerState.failed, f"模型无法加载: {exc}")
                return None
            logger.error("MODEL COULD NOT BE LOADED (attempt %s), trying again in %s s; essays stay queued: %s",
                         attempt, retry_s, exc, exc_info=attempt == 1)
            record_status(WorkerState.failed, f"模型无法加载（第 {attempt} 次尝试，{retry_s:g} 秒后重试）: {exc}")
            time.sleep(retry_s)
            record_status(WorkerState.loading)


def _prepare_default_grammar(engine: Any) -> None:
    """Compile the shipped rubric's answer grammar now (seconds on CPU) rather than in the first batch."""
    from shared.prompts.answer_schema import answer_schema
    from shared.prompts.rubric import load_rubric

    if hasattr(engine, "prepare"):
        engine.prepare(answer_schema(load_rubric("gaokao-national")))


@worker_process_shutdown.connect
def _shutdown_child(**_: object) -> None:
    # The parent records "stopped" once the whole pool is down (mark_stopped): one child of a pool going away
    # (replaced after a crash) does not stop the worker.
    if _state.beat_stop is not None:
        _state.beat_stop.set()
