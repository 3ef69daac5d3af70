"""适配器 (LoRA) for school admins: start training on the school's teacher-final grades (a job on the gpu queue),
follow its steps and loss, cancel it, read its card, roll back the active adapter, delete one.

A school admin acts within their own school, a sysadmin anywhere; another school's adapter is a 404. Promotion is
the training job's gate, never a button: an admin can only go back (rollback) or remove (delete).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from services.web.access import get_school_or_404, visible_schools
from services.web.context import db, settings, task_sender
from services.web.guards import actor, admin_required, user
from services.web.numbers import ascii_int
from shared.adapters import RUNNING, AdapterRefused, delete_adapter, queue_adapter, request_cancel, rollback
from shared.models import Adapter, AdapterStatus
from shared.prompts.rubric import list_rubrics
from shared.queueing import LOWEST_PRIORITY
from shared.tasks import TRAIN_ADAPTER_TASK

logger = logging.getLogger(__name__)

bp = Blueprint("adapters", __name__)

STATUS_NAMES = {
    "queued": "排队中", "training": "训练中", "evaluating": "验证中", "trained": "已训练（未启用）", "active": "启用中",
    "rolled_back": "已回滚", "cancelled": "已取消", "failed": "失败", "deleted": "已删除",
}
# What the page lets an admin choose; everything else keeps TrainParams' defaults.
EPOCH_CHOICES = (1, 2, 3)


def _adapter_or_404(adapter_id: int) -> Adapter:
    adapter = db().get(Adapter, adapter_id)
    if adapter is None:
        abort(404)
    get_school_or_404(db(), user(), adapter.school_id)
    return adapter


def loss_points(losses: list[Any], width: int = 300, height: int = 60) -> str:
    """An SVG polyline's points for the loss curve (steps left to right, the highest loss at the top)."""
    if len(losses) < 2:
        return ""
    steps, values = [float(s) for s, _ in losses], [float(v) for _, v in losses]
    low, high = min(values), max(values)
    span_x, span_y = (steps[-1] - steps[0]) or 1.0, (high - low) or 1.0
    return " ".join(f"{(s - steps[0]) / span_x * width:.1f},{(high - v) / span_y * height:.1f}"
                    for s, v in zip(steps, values, strict=True))


@bp.get("/admin/adapters")
@admin_required
def index() -> Any:
    session = db()
    schools = session.scalars(visible_schools(user())).all()
    adapters = session.scalars(select(Adapter).where(Adapter.school_id.in_([s.id for s in schools]))
                               .order_by(Adapter.id.desc()).limit(100)).all()
    running = any(a.status in RUNNING for a in adapters)
    return render_template("adapters/index.html", schools=schools, adapters=adapters, running=running,
                           names={s.id: s.name for s in schools}, rubrics={r.id: r for r in list_rubrics()},
                           status_names=STATUS_NAMES, epochs=EPOCH_CHOICES,
                           margin=settings().adapter_promotion_margin)


@bp.get("/admin/adapters/<int:adapter_id>")
@admin_required
def show(adapter_id: int) -> Any:
    adapter = _adapter_or_404(adapter_id)
    return render_template("adapters/show.html", adapter=adapter, status_names=STATUS_NAMES,
                           running=adapter.status in RUNNING, points=loss_points(adapter.losses))


@bp.post("/admin/adapters")
@admin_required
def start() -> Any:
    session = db()
    account = user()
    school_id = ascii_int(request.form.get("school_id", ""), minimum=1) or account.school_id
    if school_id is None:
        abort(404)
    get_school_or_404(session, account, school_id)
    rubrics = {r.id: r for r in list_rubrics()}
    rubric = rubrics.get(request.form.get("rubric", ""))
    epochs = ascii_int(request.form.get("epochs", "2"), minimum=1, maximum=max(EPOCH_CHOICES))
    if rubric is None or epochs is None:
        flash("请选择评分标准和训练轮数。", "error")
        return redirect(url_for("adapters.index"), 303)
    if session.scalar(select(Adapter.id).where(Adapter.school_id == school_id, Adapter.status.in_(RUNNING))):
        flash("本校已有一个适配器在训练，请等它结束或取消后再开始。", "error")
        return redirect(url_for("adapters.index"), 303)
    who = actor()
    adapter = queue_adapter(session, school_id, rubric.id, rubric.version, settings().model or "（工作进程的默认模型）",
                            {"epochs": epochs}, actor=who.name, actor_id=who.user_id)
    session.commit()
    try:  # last in the gpu queue: classes waiting to be graded go first
        task_sender().send_task(TRAIN_ADAPTER_TASK, args=[adapter.id], priority=LOWEST_PRIORITY)
    except Exception:
        logger.exception("could not send the training of adapter %s", adapter.id)
        adapter.status, adapter.detail = AdapterStatus.failed, "暂时无法连接任务队列，请稍后重新开始训练。"
        session.commit()
        flash(adapter.detail, "error")
        return redirect(url_for("adapters.show", adapter_id=adapter.id), 303)
    flash("训练已排队：班级的评分任务优先，空闲时开始训练。", "ok")
    return redirect(url_for("adapters.show", adapter_id=adapter.id), 303)


@bp.post("/admin/adapters/<int:adapter_id>/cancel")
@admin_required
def cancel(adapter_id: int) -> Any:
    adapter = _adapter_or_404(adapter_id)
    who = actor()
    if request_cancel(db(), adapter, actor=who.name, actor_id=who.user_id):
        flash("已请求取消：训练会在下一步停止，文件随之删除。", "ok")
    else:
        flash("训练已经结束，无需取消。", "error")
    db().commit()
    return redirect(url_for("adapters.show", adapter_id=adapter.id), 303)


@bp.post("/admin/adapters/<int:adapter_id>/rollback")
@admin_required
def roll_back(adapter_id: int) -> Any:
    adapter = _adapter_or_404(adapter_id)
    if adapter.status != AdapterStatus.active:
        flash("只能回滚启用中的适配器。", "error")
        return redirect(url_for("adapters.show", adapter_id=adapter.id), 303)
    who = actor()
    restored = rollback(db(), adapter.school_id, adapter.rubric_id, actor=who.name, actor_id=who.user_id)
    db().commit()
    flash(f"已回滚：现在使用 {restored.name}。" if restored else "已回滚：现在只用基础模型评分。", "ok")
    return redirect(url_for("adapters.index"), 303)


@bp.post("/admin/adapters/<int:adapter_id>/delete")
@admin_required
def delete(adapter_id: int) -> Any:
    adapter = _adapter_or_404(adapter_id)
    who = actor()
    try:
        delete_adapter(db(), settings().data_dir, adapter, actor=who.name, actor_id=who.user_id,
                       reason=request.form.get("reason", "")[:200])
    except AdapterRefused as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("adapters.show", adapter_id=adapter_id), 303)
    db().commit()
    flash(f"已删除适配器 {adapter.name} 的文件。", "ok")
    return redirect(url_for("adapters.index"), 303)
