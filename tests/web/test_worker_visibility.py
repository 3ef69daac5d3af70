"""Worker host names, model paths and devices are for admins; teachers see process names and states only."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from shared.models import WorkerStatus
from shared.models.base import utcnow
from tests.factories.world import World
from tests.web.conftest import client_as


def test_teachers_see_no_host_model_path_or_device(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    host, model_path = f"gpu-box-{world.tag}.internal", f"/srv/secret-models/qwen-{world.tag}"
    worker_id = f"yuejuan-gpu-{world.tag}@{host}"
    with sessions() as session, session.begin():
        session.add(WorkerStatus(id=worker_id, queues="gpu", state="ready", model=model_path, device="cuda:3",
                                 updated_at=utcnow()))
    try:
        teacher = client_as(app, world.users["owner"])
        data = teacher.get(f"/assignments/{world.assignment}/progress.json").json
        mine = [w for w in data["workers"] if w["id"] == f"yuejuan-gpu-{world.tag}"]
        assert len(mine) == 1 and mine[0]["state_name"] == "就绪"
        assert "model" not in mine[0] and "device" not in mine[0]
        page = teacher.get(f"/assignments/{world.assignment}").get_data(as_text=True)
        api = app.test_client().get(f"/api/v1/assignments/{world.assignment}/progress",
                                    headers={"Authorization": f"Bearer {world.tokens['owner']}"}).get_data(as_text=True)
        for text in (str(data), page, api):
            assert host not in text and model_path not in text and "cuda:3" not in text

        admin = client_as(app, world.users["admin"])
        seen = {w["id"]: w for w in admin.get(f"/assignments/{world.assignment}/progress.json").json["workers"]}
        assert (seen[worker_id]["model"], seen[worker_id]["device"]) == (model_path, "cuda:3")
        admin_page = admin.get(f"/assignments/{world.assignment}").get_data(as_text=True)
        assert host in admin_page and model_path in admin_page
    finally:
        with sessions() as session, session.begin():
            session.execute(delete(WorkerStatus).where(WorkerStatus.id == worker_id))
