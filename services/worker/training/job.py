"""The training job (``grading.train_adapter``, gpu queue; ``yuejuan train`` runs the same function): build the
school's supervised set, split it by student, train the adapter, measure it and the active one on the held-out
students, write the card, and promote it if it passes the gate.

The job is claimed queued → training once, so a redelivered task does not train twice. Progress (step, total, loss
per step) is written to the adapter's row after every step; a cancel request stops it at the next step and its
files are removed. Nothing leaves the server: the data is read from the database, the adapter is written under
``data_dir/adapters/<name>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker.engine.interface import EngineConfig
from services.worker.training.dataset import Example, TrainingSetError, school_examples, split_by_student
from services.worker.training.gate import decide, evaluate
from services.worker.training.params import TrainParams
from shared.adapters import CARD_FILE, active_adapter, adapter_path, adapters_dir, promote, record_students
from shared.models import Adapter, AdapterStatus, transaction
from shared.models.base import utcnow
from shared.prompts.rubric import RubricError, resolve_rubric

if TYPE_CHECKING:
    from services.worker.engine import Engine

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt")


class TrainingFailed(RuntimeError):
    """The job could not run; the reason is on the adapter's row for the page."""


def model_fingerprint(model: str) -> str:
    """SHA-256 over a local model directory's config, tokenizer and weight files (names and bytes), so a card says
    exactly which base its adapter fits; a hub id is recorded as the id alone."""
    directory = Path(model)
    if not directory.is_dir():
        return f"hub:{model}"
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def run_training_job(
    sessions: sessionmaker[Session], engine: Engine, adapter_id: int, *, config: EngineConfig, data_dir: Path,
    token_budget: int, margin: float, extra_examples: Sequence[Example] = (),
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Run one queued adapter's training to its end; returns its card ({} when it was not queued any more).

    ``engine`` is the worker's loaded model (evaluation loads the new adapter onto it); ``config`` is how the
    trainer loads its own copy of the base model. ``extra_examples`` are imported scored sets (``yuejuan train
    --set``), split by student with the platform's.
    """
    with transaction(sessions) as session:
        claimed = session.execute(
            update(Adapter).where(Adapter.id == adapter_id, Adapter.status == AdapterStatus.queued,
                                  Adapter.cancel_requested.is_(False))
            .values(status=AdapterStatus.training, detail=None, base_model=config.model)
        ).rowcount
        adapter = session.get(Adapter, adapter_id)
        if adapter is None:
            return {}
        if not claimed:
            if adapter.status == AdapterStatus.queued:  # cancelled before it started
                adapter.status, adapter.finished_at = AdapterStatus.cancelled, utcnow()
            logger.info("adapter %s is not queued (%s); nothing to do", adapter_id, adapter.status)
            return {}
        name, school_id, rubric_ref = adapter.name, adapter.school_id, adapter.rubric_id
        params = TrainParams.from_json(adapter.params)
    from services.worker.training.trainer import TrainingCancelled, train_lora  # torch: only where it trains

    out_dir = adapter_path(data_dir, name)
    try:
        rubric = resolve_rubric(rubric_ref)
        with sessions() as session:
            examples = [*school_examples(session, school_id, rubric, rubric_ref), *extra_examples]
        if not examples:
            raise TrainingSetError("本校在这一评分标准下没有教师评过分（改分、二评或仲裁）的作文，无法训练。")
        train, validation = split_by_student(examples, params.validation_fraction, params.seed)
        with transaction(sessions) as session:
            record_students(session, adapter_id, {e.student_id for e in examples if e.student_id is not None})
            session.execute(update(Adapter).where(Adapter.id == adapter_id).values(
                total_steps=params.max_steps or 0))
        stats = train_lora(
            config, [(e.conversation, e.target) for e in train], params, out_dir,
            progress=lambda step, total, loss: _progress(sessions, adapter_id, step, total, loss, progress),
            should_stop=lambda: _cancel_requested(sessions, adapter_id),
        )
        _set_status(sessions, adapter_id, AdapterStatus.evaluating)
        with sessions() as session:
            current = active_adapter(session, school_id, rubric_ref)
            current_name = current.name if current is not None else None
        essays = [e.essay for e in validation]
        candidate = evaluate(engine, essays, rubric, rubric_ref, token_budget, adapter=name,
                             adapters_dir=adapters_dir(data_dir))
        incumbent = evaluate(engine, essays, rubric, rubric_ref, token_budget, adapter=current_name,
                             adapters_dir=adapters_dir(data_dir))
        decision = decide(candidate, incumbent, margin)
        card = _card(name, school_id, config, rubric, rubric_ref, params, train, validation, stats, candidate,
                     incumbent, decision.promote, margin)
        (out_dir / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False, indent=2), encoding="utf-8")
    except TrainingCancelled:
        shutil.rmtree(out_dir, ignore_errors=True)
        _finish(sessions, adapter_id, AdapterStatus.cancelled, "训练已取消。")
        logger.info("adapter %s: training cancelled", name)
        return {}
    except Exception as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        known = isinstance(exc, TrainingSetError | RubricError)
        reason = str(exc) if known else f"训练中断：{type(exc).__name__}: {exc}"
        _finish(sessions, adapter_id, AdapterStatus.failed, reason)
        logger.exception("adapter %s: training failed", name)
        raise TrainingFailed(reason) from exc
    with transaction(sessions) as session:
        adapter = session.get(Adapter, adapter_id)
        assert adapter is not None
        adapter.card, adapter.status, adapter.finished_at = card, AdapterStatus.trained, utcnow()
        adapter.detail = decision.reason()
        if decision.promote:
            promote(session, adapter, actor="worker", figures={"candidate": decision.candidate,
                                                               "incumbent": decision.incumbent})
    if not decision.promote and hasattr(engine, "drop_adapter"):
        engine.drop_adapter(name)  # measured, refused: no batch will ask for it
    logger.info("adapter %s: %s", name, decision.reason())
    return card


def _card(name: str, school_id: int, config: EngineConfig, rubric: Any, rubric_ref: str, params: TrainParams,
          train: Sequence[Example], validation: Sequence[Example], stats: Any, candidate: dict[str, Any],
          incumbent: dict[str, Any], promoted: bool, margin: float) -> dict[str, Any]:
    dates = sorted(e.graded_at.isoformat() for e in [*train, *validation] if e.graded_at is not None)
    return {
        "name": name, "school_id": school_id, "created_at": utcnow().isoformat(),
        "base_model": config.model, "base_model_sha256": model_fingerprint(config.model),
        "quantization": config.quantization,
        "rubric": {"ref": rubric_ref, "id": rubric.id, "version": rubric.version, "name": rubric.name},
        "hyper_parameters": params.as_json(),
        "data": {
            "train_essays": len(train), "validation_essays": len(validation),
            "train_students": len({e.student for e in train}),
            "validation_students": len({e.student for e in validation}),
            "from_platform": sum(1 for e in [*train, *validation] if e.student_id is not None),
            "from_tables": sum(1 for e in [*train, *validation] if e.student_id is None),
            "graded_from": dates[0] if dates else None, "graded_until": dates[-1] if dates else None,
            "skipped_too_long": stats.skipped_too_long,
        },
        "training": {k: v for k, v in asdict(stats).items() if k != "losses"}
        | {"first_loss": stats.losses[0][1], "last_loss": stats.losses[-1][1]},
        "validation": {"candidate": candidate, "incumbent": incumbent, "margin": margin, "promoted": promoted},
    }


def _progress(sessions: sessionmaker[Session], adapter_id: int, step: int, total: int, loss: float,
              also: Callable[[int, int, float], None] | None) -> None:
    if also is not None:
        also(step, total, loss)
    with transaction(sessions) as session:
        adapter = session.get(Adapter, adapter_id)
        if adapter is not None:
            adapter.step, adapter.total_steps = step, total
            adapter.losses = [*adapter.losses, [step, round(loss, 5)]]


def _cancel_requested(sessions: sessionmaker[Session], adapter_id: int) -> bool:
    with sessions() as session:
        return bool(session.scalar(select(Adapter.cancel_requested).where(Adapter.id == adapter_id)))


def _set_status(sessions: sessionmaker[Session], adapter_id: int, status: AdapterStatus) -> None:
    with transaction(sessions) as session:
        session.execute(update(Adapter).where(Adapter.id == adapter_id).values(status=status))


def _finish(sessions: sessionmaker[Session], adapter_id: int, status: AdapterStatus, detail: str) -> None:
    with transaction(sessions) as session:
        session.execute(update(Adapter).where(Adapter.id == adapter_id)
                        .values(status=status, detail=detail, finished_at=utcnow()))
