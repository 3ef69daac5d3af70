"""/healthz reports the database and the broker; /metrics exposes grading, queue and worker figures to Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from shared import audit
from shared.celery_app import make_celery
from shared.models import WorkerStatus, transaction
from shared.settings import Settings
from tests.ops.conftest import AppFactory, PeopleFactory
from tests.processes import PrivateRedis, free_port

TOKEN = "metrics-token-for-tests-0123456789"
OTHER_HOST = {"REMOTE_ADDR": "10.20.30.40"}


def samples(app: Flask, **request: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, keyed by name and sorted labels."""
    response = app.test_client().get("/metrics", **request)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


# --- /healthz --------------------------------------------------------------------------------------------------


def test_healthz_is_ok_when_the_database_and_the_broker_answer(ops_app: Flask) -> None:
    response = ops_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_healthz_fails_when_the_database_is_down(make_ops_app: AppFactory) -> None:
    app = make_ops_app(database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error" and body["checks"]["database"].startswith("error")
    assert body["checks"]["broker"] == "ok"


def test_healthz_fails_when_the_broker_is_down(make_ops_app: AppFactory) -> None:
    app = make_ops_app(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "broker": response.get_json()["checks"]["broker"]}
    assert response.get_json()["checks"]["broker"].startswith("error")


# --- /metrics: access ------------------------------------------------------------------------------------------


def test_metrics_are_served_to_loopback_and_to_the_bearer_token_only(make_ops_app: AppFactory) -> None:
    closed = make_ops_app()
    assert closed.test_client().get("/metrics").status_code == 200, "loopback needs no token"
    assert closed.test_client().get("/metrics", environ_base=OTHER_HOST).status_code == 403
    assert closed.test_client().get("/metrics", environ_base=OTHER_HOST,
                                    headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    app = make_ops_app(metrics_token=TOKEN)
    client = app.test_client()
    assert client.get("/metrics", environ_base=OTHER_HOST).status_code == 403
    assert client.get("/metrics", environ_base=OTHER_HOST,
                      headers={"Authorization": "Bearer wrong-token"}).status_code == 403
    response = client.get("/metrics", environ_base=OTHER_HOST, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "yuejuan_essays" in response.get_data(as_text=True)


# --- /metrics: content -----------------------------------------------------------------------------------------


def test_metrics_report_essays_latency_tokens_workers_and_the_sqlite_queue(
    make_ops_app: AppFactory, make_people: PeopleFactory, sqlite_url: str, tmp_path: Path
) -> None:
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    app = make_ops_app(database_url=sqlite_url, broker_url=broker)
    sessions: sessionmaker[Session] = app_state(app).sessions
    empty = samples(app)
    assert empty[("yuejuan_essays", (("status", "graded"),))] == 0
    assert empty[("yuejuan_queue_depth", (("queue", "gpu"),))] == 0 and empty[("yuejuan_broker_up", ())] == 1

    make_people(sessions, tmp_path / "data")  # 4 graded essays, each with a model grade: 1.2 s, 300 tokens
    with transaction(sessions) as session:
        session.add_all([
            WorkerStatus(id="gpu-1@node", queues="gpu", state="ready", model="Qwen2.5-7B", device="cuda",
                         memory_mb=15_000),
            WorkerStatus(id="gpu-2@node", queues="gpu", state="failed", detail="模型无法加载"),
        ])
        for essay_id in (1, 2, 3):
            audit.record(session, "model.grade", actor="worker", object_type="essay", object_id=essay_id)
        audit.record(session, "essay.failed", actor="worker", object_type="essay", object_id=4, reason="生成失败")
    sender = make_celery(Settings(broker_url=broker, data_dir=tmp_path))
    sender.send_task("grading.grade_batch", args=[[1, 2]])
    sender.send_task("grading.grade_batch", args=[[3]])
    sender.send_task("reports.class_workbook", args=[1])

    found = samples(app)
    assert found[("yuejuan_essays", (("status", "graded"),))] == 4
    assert found[("yuejuan_essays", (("status", "queued"),))] == 0
    assert found[("yuejuan_essays_graded_total", ())] == 3
    assert found[("yuejuan_grading_failures_total", ())] == 1
    assert found[("yuejuan_grading_latency_seconds_count", ())] == 4, "model grades only, not teachers'"
    assert found[("yuejuan_grading_latency_seconds_bucket", (("le", "1.0"),))] == 0
    assert found[("yuejuan_grading_latency_seconds_bucket", (("le", "2.0"),))] == 4
    assert found[("yuejuan_grading_latency_seconds_sum", ())] == pytest.approx(4.8)
    assert found[("yuejuan_generated_tokens_total", ())] == 1200
    assert found[("yuejuan_prompt_tokens_total", ())] == 3600
    assert found[("yuejuan_generation_tokens_per_second", ())] == pytest.approx(250.0)
    assert found[("yuejuan_queue_depth", (("queue", "gpu"),))] == 2
    assert found[("yuejuan_queue_depth", (("queue", "reports"),))] == 1
    assert found[("yuejuan_worker_ready", (("queues", "gpu"), ("worker", "gpu-1@node")))] == 1
    assert found[("yuejuan_worker_ready", (("queues", "gpu"), ("worker", "gpu-2@node")))] == 0
    assert found[("yuejuan_worker_memory_bytes", (("device", "cuda"), ("worker", "gpu-1@node")))] == 15_000 * 2**20
    assert found[("yuejuan_report_jobs", (("status", "done"),))] == 5


def test_metrics_count_the_redis_queues(make_ops_app: AppFactory, private_redis: PrivateRedis) -> None:
    app = make_ops_app(broker_url=private_redis.url)
    assert samples(app)[("yuejuan_queue_depth", (("queue", "gpu"),))] == 0
    sender = make_celery(Settings(broker_url=private_redis.url))
    for batch in ([1], [2], [3]):
        sender.send_task("grading.grade_batch", args=[batch])
    found = samples(app)
    assert found[("yuejuan_queue_depth", (("queue", "gpu"),))] == 3
    assert found[("yuejuan_queue_depth", (("queue", "reports"),))] == 0


def test_metrics_still_answer_when_the_broker_is_down(make_ops_app: AppFactory) -> None:
    found = samples(make_ops_app(broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert found[("yuejuan_broker_up", ())] == 0
    assert not any(name == "yuejuan_queue_depth" for name, _ in found)
    assert ("yuejuan_essays", (("status", "graded"),)) in found
