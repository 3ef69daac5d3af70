"""The optional IP allowlist (``allowed_networks``) and the trusted reverse proxy (``proxy_hops``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from services.web.network import address_allowed
from services.web.state import app_state
from shared.models import AuditLog
from shared.settings import Settings
from tests.ops.conftest import AppFactory

NETWORKS = "10.0.0.0/8, 192.168.1.0/24, fd00::/8"


def _status(app, path: str, remote: str, **headers: str) -> int:  # type: ignore[no-untyped-def]
    return app.test_client().get(path, environ_base={"REMOTE_ADDR": remote}, headers=headers).status_code


def test_only_listed_networks_and_loopback_reach_the_app(make_ops_app: AppFactory) -> None:
    app = make_ops_app(allowed_networks=NETWORKS, metrics_token="tok-0123456789")
    for inside in ("10.1.2.3", "192.168.1.77", "fd00::12", "::ffff:10.9.9.9", "127.0.0.1", "::1"):
        assert _status(app, "/login", inside) == 200, inside
    for outside in ("172.16.0.5", "192.168.2.1", "8.8.8.8", "2001:db8::1"):
        assert _status(app, "/login", outside) == 403, outside
    refused = app.test_client().get("/login", environ_base={"REMOTE_ADDR": "172.16.0.5"})
    assert "此网络地址不允许访问" in refused.get_data(as_text=True)
    api = app.test_client().get("/api/v1/me", environ_base={"REMOTE_ADDR": "172.16.0.5"})
    assert api.status_code == 403 and api.get_json()["status"] == 403
    assert _status(app, "/static/style.css", "172.16.0.5") == 403
    assert _status(app, "/metrics", "172.16.0.5", Authorization="Bearer tok-0123456789") == 403
    assert _status(app, "/metrics", "10.1.2.3", Authorization="Bearer tok-0123456789") == 200


def test_healthz_stays_open_for_the_orchestrator(make_ops_app: AppFactory) -> None:
    app = make_ops_app(allowed_networks=NETWORKS)
    assert _status(app, "/healthz", "172.16.0.5") == 200


def test_an_empty_allowlist_allows_everyone(make_ops_app: AppFactory) -> None:
    app = make_ops_app()
    assert _status(app, "/login", "8.8.8.8") == 200
    assert address_allowed("8.8.8.8", []) and not address_allowed("garbage", Settings(
        allowed_networks="10.0.0.0/8").allowed_network_list())


def test_a_bad_network_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError):
        Settings(allowed_networks="10.0.0.0/8, 10.0.0.300/24")


def test_behind_nginx_the_forwarded_address_is_checked(make_ops_app: AppFactory) -> None:
    app = make_ops_app(allowed_networks=NETWORKS, proxy_hops=1)
    nginx = "172.18.0.4"  # the proxy's own address is outside the allowlist; only the client's counts
    assert _status(app, "/login", nginx, **{"X-Forwarded-For": "10.1.2.3"}) == 200
    assert _status(app, "/login", nginx, **{"X-Forwarded-For": "8.8.8.8"}) == 403
    assert _status(app, "/login", nginx, **{"X-Forwarded-For": "10.1.2.3, 8.8.8.8"}) == 403, \
        "only the last hop (set by our proxy) is trusted"


def test_without_a_trusted_proxy_forwarded_headers_are_ignored(make_ops_app: AppFactory) -> None:
    app = make_ops_app(allowed_networks=NETWORKS)
    assert _status(app, "/login", "8.8.8.8", **{"X-Forwarded-For": "10.1.2.3"}) == 403


def test_the_audit_log_records_the_forwarded_client_address(make_ops_app: AppFactory) -> None:
    from tests.web.conftest import CSRF

    app = make_ops_app(proxy_hops=1)
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    username = "nobody-behind-nginx"
    response = client.post("/login", data={"username": username, "password": "wrong", "csrf_token": CSRF},
                           environ_base={"REMOTE_ADDR": "172.18.0.4"}, headers={"X-Forwarded-For": "10.7.7.7"})
    assert response.status_code == 401
    with app_state(app).sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.actor == username).order_by(AuditLog.id.desc()))
    assert row is not None and row.ip == "10.7.7.7"
