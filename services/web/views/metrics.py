"""Prometheus ``/metrics``: computed from the database and the broker at scrape time (safe with many web processes).

Counters that come from the append-only audit log (essays graded, failures, retries) only ever grow; token
counters and the latency histogram cover the grades still retained, so a retention purge may lower them.
Readable from loopback without credentials, from elsewhere with ``Authorization: Bearer <metrics_token>``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.web.network import is_loopback
from services.web.prometheus import YuejuanCollector
from services.web.state import app_state
from shared.settings import Settings

logger = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


def allowed(settings: Settings, remote_addr: str | None, authorization: str | None) -> bool:
    """Loopback, or the configured bearer token (compared in constant time)."""
    if is_loopback(remote_addr):
        return True
    token = settings.metrics_token
    if not token or not authorization or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization.removeprefix("Bearer ").strip().encode(), token.encode())


@bp.get("/metrics")
def metrics() -> Any:
    state = app_state()
    settings = state.settings
    if not allowed(settings, request.remote_addr, request.headers.get("Authorization")):
        from services.web.errors import render_error

        return render_error(403, "指标接口只对本机或持有指标令牌（YUEJUAN_METRICS_TOKEN）的请求开放。")
    collector = YuejuanCollector(state.sessions, settings.resolved_broker_url(),
                                 worker_lost_after_s=settings.worker_lost_after_s)
    return Response(generate_latest(collector), content_type=CONTENT_TYPE_LATEST)  # type: ignore[arg-type]
