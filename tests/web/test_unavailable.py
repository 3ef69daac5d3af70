"""A database or broker that cannot be reached answers 503 with Retry-After and a Chinese page, not 500."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.web.errors import RETRY_AFTER_S
from services.web.state import app_state
from tests.conftest import PG_ADMIN_URL
from tests.web.conftest import make_app

NOBODY_LISTENS = "postgresql+psycopg://postgres@127.0.0.1:1/yuejuan"


def _missing_database() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/yuejuan_no_such_database"


@pytest.fixture(params=["closed-port", "missing-database"])
def dead_db_app(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The real app pointed at a PostgreSQL that does not answer (or has no such database)."""
    url = NOBODY_LISTENS if request.param == "closed-port" else _missing_database()
    application = make_app(url, redis_url, tmp_path)
    yield application
    app_state(application).engine.dispose()


def _signed_in(app: Flask) -> object:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["uid"], sess["fp"], sess["csrf"] = 1, "fingerprint", "csrf"
    return client


def test_a_page_while_the_database_is_down_is_503_with_retry_after_and_a_chinese_page(dead_db_app: Flask) -> None:
    client = _signed_in(dead_db_app)
    for path in ("/", "/classes", "/assignments/1"):
        response = client.get(path)  # type: ignore[attr-defined]
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert "服务暂时不可用" in page and "暂时无法连接数据库" in page
        assert "OperationalError" not in page and "psycopg" not in page


def test_the_api_while_the_database_is_down_is_503_json(dead_db_app: Flask) -> None:
    response = dead_db_app.test_client().get("/api/v1/classes", headers={"Authorization": "Bearer yj_anything"})
    assert response.status_code == 503 and response.headers["Retry-After"] == str(RETRY_AFTER_S)
    body = response.get_json()
    assert body["status"] == 503 and "暂时无法连接数据库" in body["error"]


@pytest.fixture()
def failing_app(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app with a few views that fail the way a lost broker or a full disk does."""
    application = make_app(pg_url, redis_url, tmp_path)
    failures: dict[str, BaseException] = {
        "kombu": KombuOperationalError("[Errno 111] Connection refused"),
        "redis": RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        "disk": OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/srv/yuejuan/data/x"),
        "bug": KeyError("a bug"),
    }
    for name, exc in failures.items():
        def fail(exc: BaseException = exc) -> str:
            raise exc

        application.add_url_rule(f"/test-fail/{name}", f"fail_{name}", fail)
        application.add_url_rule(f"/api/test-fail/{name}", f"api_fail_{name}", fail)
    yield application
    app_state(application).engine.dispose()


@pytest.mark.parametrize("broker", ["kombu", "redis"])
def test_a_lost_broker_is_503_with_retry_after(failing_app: Flask, broker: str) -> None:
    client = failing_app.test_client()
    page = client.get(f"/test-fail/{broker}")
    assert page.status_code == 503 and page.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert "暂时无法连接任务队列" in page.get_data(as_text=True)
    api = client.get(f"/api/test-fail/{broker}")
    assert api.status_code == 503 and "暂时无法连接任务队列" in api.get_json()["error"]


def test_a_full_disk_is_507_and_a_bug_is_still_500(failing_app: Flask) -> None:
    client = failing_app.test_client()
    disk = client.get("/test-fail/disk")
    assert disk.status_code == 507 and "磁盘空间不足" in disk.get_data(as_text=True)
    assert "/srv/yuejuan" not in disk.get_data(as_text=True)
    bug = client.get("/test-fail/bug")
    assert bug.status_code == 500 and "Retry-After" not in bug.headers
