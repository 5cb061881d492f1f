"""Operations: health of every dependency and Prometheus metrics.

``GET /api/v1/health`` (and the root alias ``/health``) answers 200 when the database, the
cache, the media disk, the channel layer (with the realtime history) and the Celery broker all
work, else 503 with the same shape and the failing checks saying what failed. The checks live
in ``backend.core.health``; the ``workers`` check is reported without failing the answer.

``GET /api/v1/metrics`` (and ``/metrics``) is the Prometheus text exposition of this process
(django-prometheus), with ``triton_health_check_ok{check="workers"}`` refreshed on each
scrape. It answers callers on ``METRICS_ALLOWED_NETWORKS`` or with ``METRICS_BEARER_TOKEN``;
anyone else gets 404.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Router
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest

from api.errors import PROBLEM_CONTENT_TYPE, TYPE_BASE, problem, problem_responses
from api.operations.schemas import HealthFailureOut, HealthOut
from backend.core import health as health_checks

logger = logging.getLogger("triton.health")

router = Router()


def _health_response() -> HttpResponse:
    started = time.monotonic()
    checks = health_checks.run_checks()
    failing = health_checks.failing(checks)
    if not failing:
        body: dict[str, Any] = {"status": "ok", "checks": checks}
        response = HttpResponse(json.dumps(body), content_type="application/json")
    else:
        # The contract's health shape, plus the RFC 9457 members: problem-details readers
        # ignore the non-numeric "status" (RFC 9457 section 3.1) and still get type/title/detail.
        body = {
            "type": TYPE_BASE + "service-unavailable",
            "title": "Service unavailable",
            "detail": "Failing checks: " + ", ".join(failing) + ".",
            "status": "error",
            "checks": checks,
        }
        response = HttpResponse(json.dumps(body), status=503, content_type=PROBLEM_CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    response["Server-Timing"] = f"health;dur={(time.monotonic() - started) * 1000:.0f}"
    return response


def metrics_allowed(request: HttpRequest) -> bool:
    """The direct peer is on an allowed network (a forwarded header is never trusted here:
    behind the proxy, REMOTE_ADDR is the proxy), or the caller sends the bearer token."""
    token = settings.METRICS_BEARER_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for network in settings.METRICS_ALLOWED_NETWORKS:
        try:
            if peer in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            logger.warning("METRICS_ALLOWED_NETWORKS: %r is not a network", network)
    return False


def _metrics_registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _metrics_response(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return problem(404, "Not found.")
    health_checks.run_checks(["workers"])  # refreshes triton_health_check_ok{check="workers"}
    response = HttpResponse(
        generate_latest(_metrics_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4
    )
    response["Cache-Control"] = "no-store"
    return response


# --- plain Django views: the root aliases /health and /metrics (backend/urls.py) ----------------


def health_view(request: HttpRequest) -> HttpResponse:
    return _health_response()


def metrics_view(request: HttpRequest) -> HttpResponse:
    return _metrics_response(request)


# --- the same under /api/v1/ ------------------------------------------------------------------


@router.get(
    "/health",
    auth=None,
    response={200: HealthOut, 503: HealthFailureOut},
    summary="Health of every dependency",
    description="200 when the database, cache, media disk, channel layer and broker all work; "
    "503 with the same shape (and problem-details members) when one fails. `workers` (a Celery "
    "worker answers a ping; `ok` when jobs run in-process) is reported but does not fail the "
    "answer. Every check is bounded by HEALTH_CHECK_TIMEOUT seconds.",
)
def health(request: HttpRequest) -> HttpResponse:
    return _health_response()


@router.get(
    "/metrics",
    auth=None,
    summary="Prometheus metrics of this process",
    description="Prometheus text exposition format 0.0.4. Answers callers on "
    "METRICS_ALLOWED_NETWORKS (default loopback) or sending `Authorization: Bearer "
    "<METRICS_BEARER_TOKEN>`; 404 for anyone else.",
    response=problem_responses(404),
    openapi_extra={
        "responses": {
            200: {
                "description": "Prometheus text format",
                "content": {CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}}},
            }
        }
    },
)
def metrics(request: HttpRequest) -> HttpResponse:
    return _metrics_response(request)


@router.get(
    "/ping",
    auth=None,
    response={200: dict[str, str]},
    summary="Constant answer: the server is up (no dependency is checked)",
    description="Liveness only; `make bench` uses it as the REST baseline of the same stack.",
)
def ping(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}
