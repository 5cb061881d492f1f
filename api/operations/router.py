"""Operations: health of every dependency and Prometheus metrics.

``GET /api/v1/health`` (and the root alias ``/health``) answers 200 when the database, the
cache, the media disk, the channel layer (with the realtime history) and the Celery broker all
work, else 503 with the same shape and the failing checks saying what failed. Each check runs
in its own thread and is bounded by ``HEALTH_CHECK_TIMEOUT`` seconds, so the endpoint answers
within about that time whatever hangs behind it; it never raises.

``GET /api/v1/metrics`` (and ``/metrics``) is the Prometheus text exposition of this process
(django-prometheus). Both are public: restrict them at the reverse proxy (see
compose/nginx/nginx.conf) where that matters.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpRequest, HttpResponse
from ninja import Router
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest

from api.errors import PROBLEM_CONTENT_TYPE, TYPE_BASE
from api.operations.schemas import HealthFailureOut, HealthOut

logger = logging.getLogger("triton.health")

router = Router()

OK = "ok"
_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


def _timeout() -> float:
    return float(settings.HEALTH_CHECK_TIMEOUT)


def _reason(exc: BaseException) -> str:
    """A short, single-line reason without credentials that may sit in a URL."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _SECRET_IN_URL.sub(r"\g<scheme>***@", text)
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason[:160]


# --- the checks: each returns None when fine and raises otherwise ------------------------------


def check_database() -> None:
    """``SELECT 1`` on a private connection with short timeouts, closed afterwards.

    A private connection (not the thread's shared one) keeps the probe's timeouts from
    leaking into request connections and leaves nothing open in the probe's thread.
    """
    shared = connections["default"]
    settings_dict = copy.deepcopy(shared.settings_dict)
    options = settings_dict.setdefault("OPTIONS", {})
    seconds = _timeout()
    if shared.vendor == "mysql":
        options.update(
            {"connect_timeout": seconds, "read_timeout": seconds, "write_timeout": seconds}
        )
    elif shared.vendor == "sqlite":
        options["timeout"] = seconds
    elif shared.vendor == "postgresql":
        options["connect_timeout"] = max(1, int(seconds))
    probe = type(shared)(settings_dict, shared.alias)
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
        if not row or row[0] != 1:
            raise RuntimeError(f"SELECT 1 returned {row!r}")
    finally:
        probe.close()


def check_cache() -> None:
    cache = caches["default"]
    key = f"health:{uuid.uuid4().hex}"
    nonce = uuid.uuid4().hex
    try:
        cache.set(key, nonce, timeout=30)
        value = cache.get(key)
    finally:
        cache.delete(key)
    if value != nonce:
        raise RuntimeError("a value written to the cache did not read back")


def check_disk() -> None:
    """MEDIA_ROOT's file system has HEALTH_MIN_FREE_DISK_BYTES free and takes a write."""
    media_root = Path(settings.MEDIA_ROOT)
    media_root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(media_root).free
    minimum = int(settings.HEALTH_MIN_FREE_DISK_BYTES)
    if free < minimum:
        raise RuntimeError(
            f"{free // (1024 * 1024)} MiB free under MEDIA_ROOT, "
            f"below the {minimum // (1024 * 1024)} MiB minimum"
        )
    with tempfile.NamedTemporaryFile(dir=media_root, prefix=".health-", delete=True) as handle:
        handle.write(b"ok")
        handle.flush()


async def _layer_round_trip() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel()
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.ping", "nonce": nonce})
    message = await layer.receive(channel)
    if message.get("nonce") != nonce:
        raise RuntimeError("the channel layer returned a different message")


def check_channel_layer() -> None:
    """Send and receive one message on a fresh channel, then PING the realtime history.

    With channels-redis' pub/sub layer this is SUBSCRIBE + PUBLISH + delivery through Redis;
    with the in-memory layer, a queue round trip. The event loop is private to this check:
    the pub/sub layer keeps one connection set per loop and flushes it when the loop closes.
    """
    seconds = _timeout()
    try:
        asyncio.run(asyncio.wait_for(_layer_round_trip(), timeout=seconds))
    except TimeoutError as exc:
        raise TimeoutError(f"no round trip within {seconds:.1f}s") from exc

    from realtime.history import get_history

    if not get_history().ping():
        raise RuntimeError("realtime history did not answer PING")


def check_broker() -> None:
    """Jobs run in-process when eager (nothing to reach); otherwise connect to the broker."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from workers.celery import app

    connection = app.connection_for_write(settings.CELERY_BROKER_URL)
    try:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=_timeout())
    finally:
        connection.release()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "disk": check_disk,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
}


def _run_one(name: str, check: Callable[[], None]) -> str:
    try:
        check()
    except BaseException as exc:  # a check must never take the endpoint down
        logger.warning("health check %s failed: %s", name, _reason(exc))
        return f"error: {_reason(exc)}"
    return OK


def run_checks() -> dict[str, str]:
    """Runs every check concurrently; a check still running after the timeout has failed."""
    seconds = _timeout()
    executor = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="health")
    try:
        futures = {name: executor.submit(_run_one, name, check) for name, check in CHECKS.items()}
        # Each check bounds itself; the extra half second is for the threads' own start-up.
        wait(futures.values(), timeout=seconds + 0.5)
        results: dict[str, str] = {}
        for name, future in futures.items():
            if future.done():
                results[name] = future.result()
            else:
                logger.warning("health check %s timed out after %.1fs", name, seconds)
                results[name] = f"error: timed out after {seconds:.1f}s"
        return results
    finally:
        # Never wait for a hung check: its own socket timeouts end its thread later.
        executor.shutdown(wait=False, cancel_futures=True)


def _health_response() -> HttpResponse:
    started = time.monotonic()
    try:
        checks = run_checks()
    except Exception as exc:  # e.g. no thread could be started
        logger.exception("health checks could not run")
        checks = dict.fromkeys(CHECKS, f"error: checks did not run ({_reason(exc)})")
    failing = [name for name, result in checks.items() if result != OK]
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


def _metrics_registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _metrics_response() -> HttpResponse:
    response = HttpResponse(
        generate_latest(_metrics_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4
    )
    response["Cache-Control"] = "no-store"
    return response


# --- plain Django views: the root aliases /health and /metrics (backend/urls.py) ----------------


def health_view(request: HttpRequest) -> HttpResponse:
    return _health_response()


def metrics_view(request: HttpRequest) -> HttpResponse:
    return _metrics_response()


# --- the same under /api/v1/ ------------------------------------------------------------------


@router.get(
    "/health",
    auth=None,
    response={200: HealthOut, 503: HealthFailureOut},
    summary="Health of every dependency",
    description="200 when the database, cache, media disk, channel layer and broker all work; "
    "503 with the same shape (and problem-details members) when one fails. Every check is "
    "bounded by HEALTH_CHECK_TIMEOUT seconds.",
)
def health(request: HttpRequest) -> HttpResponse:
    return _health_response()


@router.get(
    "/metrics",
    auth=None,
    summary="Prometheus metrics of this process",
    description="Prometheus text exposition format 0.0.4. Public: restrict it at the proxy.",
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
    return _metrics_response()


@router.get(
    "/ping",
    auth=None,
    response={200: dict[str, str]},
    summary="Constant answer: the server is up (no dependency is checked)",
    description="Liveness only; `make bench` uses it as the REST baseline of the same stack.",
)
async def ping(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}
