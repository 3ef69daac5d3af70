"""Where requests may come from: the optional IP allowlist and the reverse proxies whose headers are trusted.

With ``allowed_networks`` set, only those networks (and the server itself, over loopback) reach the app;
anyone else gets 403. ``/healthz`` stays open so an orchestrator or load balancer can probe it; it reveals
nothing but "ok". Behind nginx set ``proxy_hops=1`` so the client's address comes from X-Forwarded-For.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.settings import Settings

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz"})
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(raw: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(raw: str | None) -> bool:
    address = parse_address(raw)
    return address is not None and address.is_loopback


def address_allowed(raw: str | None, networks: list[IPNetwork]) -> bool:
    """True when no allowlist is configured, or the address is loopback or inside one of the networks."""
    if not networks:
        return True
    address = parse_address(raw)
    if address is None:
        return False
    return address.is_loopback or any(address in network for network in networks)


def init_network(app: Flask, settings: Settings) -> None:
    """Trust the configured number of proxies, then refuse addresses outside the allowlist (before anything else)."""
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    networks = settings.allowed_network_list()
    if not networks:
        return

    def _check_address() -> Any:
        if request.path in OPEN_PATHS or address_allowed(request.remote_addr, networks):
            return None
        logger.warning("refused %s %s from %s (not in allowed_networks)", request.method, request.path,
                       request.remote_addr)
        from services.web.errors import render_error

        return render_error(403, "此网络地址不允许访问阅卷系统。请在学校内网使用，或联系管理员。")

    app.before_request_funcs.setdefault(None, []).insert(0, _check_address)
