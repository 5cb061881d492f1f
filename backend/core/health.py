"""Health of every dependency, checked from the domain core (the API and the root /health
view only shape the answer).

Each check returns None when fine and raises otherwise; :func:`run_checks` runs them
concurrently, each bounded by ``HEALTH_CHECK_TIMEOUT`` seconds, so an answer comes within
about that time whatever hangs behind it.

``workers`` (some Celery worker answers a ping) is reported but does not make the system
unhealthy (:data:`INFORMATIONAL`): /health is what load balancers and container
orchestrators act on, and taking every web process out of rotation, or restarting it, because
the worker pool is down would turn late background jobs into a full outage without bringing
a worker back. Jobs wait in the broker meanwhile; alert on the ``workers`` check or on the
``triton_health_check_ok{check="workers"}`` metric instead.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.cache import caches
from django.db import connections
from prometheus_client import Gauge

logger = logging.getLogger("triton.health")

CHECK_OK = Gauge(
    "triton_health_check_ok",
    "1 when the health check passed the last time it ran in this process, else 0",
    ["check"],
    multiprocess_mode="max",
)

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
    connection = current_app.connection_for_write(settings.CELERY_BROKER_URL)
    try:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=_timeout())
    finally:
        connection.release()


def check_workers() -> None:
    """At least one Celery worker answers a broadcast ping within the check's time ("ok" when
    jobs run in-process: there are no workers to have)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    # Leave the check's own timeout room for connecting to the broker.
    replies = current_app.control.inspect(timeout=max(0.2, _timeout() / 2)).ping()
    if not replies:
        raise RuntimeError("no Celery worker answered a ping")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "disk": check_disk,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "workers": check_workers,
}
# Reported, but not failing /health (503): see the module docstring.
INFORMATIONAL = frozenset({"workers"})


def _run_one(name: str, check: Callable[[], None]) -> str:
    try:
        check()
    except BaseException as exc:  # a check must never take the endpoint down
        logger.warning("health check %s failed: %s", name, _reason(exc))
        return f"error: {_reason(exc)}"
    return OK


def run_checks(names: Iterable[str] | None = None) -> dict[str, str]:
    """Runs the checks (every one by default) concurrently; ``"ok"`` or ``"error: <reason>"``
    each. A check still running after the timeout has failed. Never raises."""
    seconds = _timeout()
    selected = {name: CHECKS[name] for name in (CHECKS if names is None else names)}
    executor = ThreadPoolExecutor(max_workers=len(selected), thread_name_prefix="health")
    try:
        futures = {name: executor.submit(_run_one, name, check) for name, check in selected.items()}
    except Exception as exc:  # e.g. no thread could be started
        executor.shutdown(wait=False, cancel_futures=True)
        logger.exception("health checks could not run")
        return dict.fromkeys(selected, f"error: checks did not run ({_reason(exc)})")
    try:
        # Each check bounds itself; the extra half second is for the threads' own start-up.
        wait(futures.values(), timeout=seconds + 0.5)
        results: dict[str, str] = {}
        for name, future in futures.items():
            if future.done():
                results[name] = future.result()
            else:
                logger.warning("health check %s timed out after %.1fs", name, seconds)
                results[name] = f"error: timed out after {seconds:.1f}s"
        for name, result in results.items():
            CHECK_OK.labels(check=name).set(1 if result == OK else 0)
        return results
    finally:
        # Never wait for a hung check: its own socket timeouts end its thread later.
        executor.shutdown(wait=False, cancel_futures=True)


def failing(checks: dict[str, str]) -> list[str]:
    """The checks that make the system unhealthy (503)."""
    return [name for name, result in checks.items() if result != OK and name not in INFORMATIONAL]
