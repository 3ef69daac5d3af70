"""模型适配 from the web: an admin starts training (a gpu-queue task by name), follows steps and loss, cancels a
queued job (the task then does nothing), rolls back the active adapter and deletes one; erasing a student names the
adapters their essays trained."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.worker.engine.interface import EngineConfig
from services.worker.training.job import run_training_job
from shared.adapters import adapter_path, record_students
from shared.models import Adapter, AdapterStatus, AuditLog, Student, transaction
from shared.tasks import TRAIN_ADAPTER_TASK
from tests.factories.world import World
from tests.web.conftest import TaskRecorder, client_as, form


def test_an_admin_starts_training_and_follows_its_progress(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder,
) -> None:
    client = client_as(app, world.users["admin"])
    response = client.post("/admin/adapters", data=form(rubric="gaokao-national", epochs="1"))
    assert response.status_code == 303
    adapter_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert tasks.sent == [(TRAIN_ADAPTER_TASK, [adapter_id])]
    with sessions() as session:
        adapter = session.get(Adapter, adapter_id)
        assert adapter is not None and adapter.school_id == world.school_a
        assert (adapter.status, adapter.params) == (AdapterStatus.queued, {"epochs": 1})
        requested_by = session.scalar(select(AuditLog.actor).where(AuditLog.action == "adapter.train",
                                                                   AuditLog.object_id == adapter_id))
        assert requested_by == world.usernames["admin"]
    # A second start while one is running is refused.
    again = client.post("/admin/adapters", data=form(rubric="gaokao-national", epochs="1"), follow_redirects=True)
    assert "已有一个适配器在训练" in again.get_data(as_text=True) and len(tasks.sent) == 1

    with transaction(sessions) as session:  # what the job writes after three of ten steps
        adapter = session.get(Adapter, adapter_id)
        adapter.status, adapter.step, adapter.total_steps = AdapterStatus.training, 3, 10
        adapter.losses = [[1, 2.5], [2, 2.0], [3, 1.25]]
    page = client.get(f"/admin/adapters/{adapter_id}").get_data(as_text=True)
    assert "训练中" in page and "第 3/10 步" in page and "2.5000 → <strong id=\"adapter-loss\">1.2500" in page
    assert 'points="0.0,0.0 150.0,24.0 300.0,60.0"' in page  # the loss curve, highest loss at the top
    assert 'http-equiv="refresh"' in page and "取消训练" in page
    listing = client.get("/admin/adapters").get_data(as_text=True)
    assert "3/10 步，损失 1.2500" in listing


def test_a_cancelled_queued_job_never_trains(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder, web_data_dir: Path,
) -> None:
    client = client_as(app, world.users["admin"])
    adapter_id = int(client.post("/admin/adapters", data=form(rubric="gaokao-national"))
                     .headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/admin/adapters/{adapter_id}/cancel", data=form()).status_code == 303
    # The task arrives after the cancel: it stops before loading anything (no engine, no model needed).
    config = EngineConfig(model="/nonexistent")
    assert run_training_job(sessions, None, adapter_id, config=config, data_dir=web_data_dir,  # type: ignore[arg-type]
                            token_budget=1000, margin=0.02) == {}
    with sessions() as session:
        adapter = session.get(Adapter, adapter_id)
        assert adapter is not None and adapter.status == AdapterStatus.cancelled and adapter.step == 0
    assert not adapter_path(web_data_dir, adapter.name).exists()


def test_rollback_and_delete_from_the_page(
    app: Flask, world: World, sessions: sessionmaker[Session], web_data_dir: Path,
) -> None:
    with transaction(sessions) as session:
        adapter = session.get(Adapter, world.adapter)
        adapter.status = AdapterStatus.active
        name = adapter.name
    files = adapter_path(web_data_dir, name)
    files.mkdir(parents=True)
    (files / "adapter_config.json").write_text("{}")
    client = client_as(app, world.users["admin"])
    assert "回滚" in client.get(f"/admin/adapters/{world.adapter}").get_data(as_text=True)
    done = client.post(f"/admin/adapters/{world.adapter}/rollback", data=form(), follow_redirects=True)
    assert "现在只用基础模型评分" in done.get_data(as_text=True)
    with sessions() as session:
        assert session.get(Adapter, world.adapter).status == AdapterStatus.rolled_back
    client.post(f"/admin/adapters/{world.adapter}/delete", data=form())
    with sessions() as session:
        assert session.get(Adapter, world.adapter).status == AdapterStatus.deleted
        assert session.scalar(select(AuditLog.details).where(
            AuditLog.action == "adapter.delete", AuditLog.object_id == world.adapter))["name"] == name
    assert not files.exists()


def test_erasing_a_student_names_the_adapters_their_essays_trained(
    app: Flask, world: World, sessions: sessionmaker[Session],
) -> None:
    student = world.students[0]
    with transaction(sessions) as session:
        record_students(session, world.adapter, [student])
        name = session.get(Adapter, world.adapter).name
        student_name = session.get(Student, student).name
    client = client_as(app, world.users["admin"])
    page = client.post(f"/admin/students/{student}/erase", data=form(confirm_name=student_name),
                       follow_redirects=True).get_data(as_text=True)
    assert "已永久删除学生" in page and f"请在“模型适配”页重新训练或删除：{name}" in page
