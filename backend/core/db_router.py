"""Reads on read replicas, writes and read-your-writes on the primary.

``DATABASE_REPLICA_URLS`` adds database aliases ``replica_0``, ``replica_1``... and this router:

- writes go to ``default`` (the primary), and the first write of a request or job pins the rest
  of that request or job to the primary, so it reads its own writes (replication is
  asynchronous). ``RequestPinMiddleware`` opens a fresh scope per request, Celery's
  ``task_prerun``/``task_postrun`` signals one per job (``connect_celery_signals``, called by
  workers/celery.py);
- reads inside a transaction on the primary stay there (one consistent snapshot);
- other reads go to a replica that answered a health check within ``REPLICA_HEALTH_TTL``
  seconds: connect within ``REPLICA_CONNECT_TIMEOUT`` and ``SHOW SLAVE STATUS`` with both
  threads running and ``Seconds_Behind_Master`` at most ``REPLICA_MAX_LAG``. A dead, stopped,
  broken or lagging replica is skipped until it passes again; with none usable, reads go to
  the primary.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import pymysql
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA_PREFIX = "replica_"


@dataclass
class _Pin:
    """Shared by every copy of the context (sync_to_async threads copy contextvars)."""

    primary: bool = False


_pin: ContextVar[_Pin | None] = ContextVar("db_primary_pin", default=None)


def _current_pin() -> _Pin:
    pin = _pin.get()
    if pin is None:
        # Outside a request or job (shell, management command): one scope for the context.
        pin = _Pin()
        _pin.set(pin)
    return pin


def pin_to_primary() -> None:
    """Send the rest of this request or job to the primary (called on its first write)."""
    _current_pin().primary = True


def is_pinned() -> bool:
    pin = _pin.get()
    return pin is not None and pin.primary


@contextmanager
def primary_pin_scope() -> Iterator[None]:
    """A fresh scope: nothing written yet, reads may go to replicas."""
    token = _pin.set(_Pin())
    try:
        yield
    finally:
        _pin.reset(token)


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith(REPLICA_PREFIX)]


# --- health ---------------------------------------------------------------------------------


@dataclass
class _Health:
    usable: bool
    checked_at: float


_health: dict[str, _Health] = {}
_health_lock = threading.Lock()
_checking: set[str] = set()


def _check_replica(alias: str) -> bool:
    """One bounded probe on a fresh connection: reachable, replicating, not lagging."""
    params = settings.DATABASES[alias]
    timeout = int(getattr(settings, "REPLICA_CONNECT_TIMEOUT", 1))
    try:
        conn = pymysql.connect(
            host=params.get("HOST") or "127.0.0.1",
            port=int(params.get("PORT") or 3306),
            user=params.get("USER") or "root",
            password=params.get("PASSWORD") or "",
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            cursorclass=pymysql.cursors.DictCursor,
        )
    except pymysql.MySQLError as error:
        logger.warning("replica %s unreachable: %s", alias, error)
        return False
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            status: dict[str, Any] | None = cursor.fetchone()
    except pymysql.MySQLError as error:
        logger.warning("replica %s status unknown: %s", alias, error)
        return False
    finally:
        conn.close()
    if not status:
        logger.warning("replica %s is not replicating (no slave status)", alias)
        return False
    lag = status.get("Seconds_Behind_Master")
    running = status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes"
    max_lag = float(getattr(settings, "REPLICA_MAX_LAG", 5))
    if not running or lag is None or float(lag) > max_lag:
        logger.warning("replica %s skipped: running=%s lag=%s", alias, running, lag)
        return False
    return True


def replica_usable(alias: str) -> bool:
    """The memoised health of ``alias``; re-checked after REPLICA_HEALTH_TTL seconds by one
    thread while the others keep the previous answer (unknown counts as not usable)."""
    ttl = float(getattr(settings, "REPLICA_HEALTH_TTL", 5))
    now = time.monotonic()
    with _health_lock:
        known = _health.get(alias)
        if known is not None and now - known.checked_at < ttl:
            return known.usable
        if alias in _checking:
            return known.usable if known is not None else False
        _checking.add(alias)
    try:
        usable = _check_replica(alias)
    finally:
        with _health_lock:
            _checking.discard(alias)
    with _health_lock:
        _health[alias] = _Health(usable, time.monotonic())
    return usable


def forget_replica_health() -> None:
    with _health_lock:
        _health.clear()


# --- the router -----------------------------------------------------------------------------


class PrimaryReplicaRouter:
    def db_for_read(self, model: type, **hints: Any) -> str:
        if is_pinned() or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        usable = [alias for alias in replica_aliases() if replica_usable(alias)]
        return random.choice(usable) if usable else PRIMARY

    def db_for_write(self, model: type, **hints: Any) -> str:
        pin_to_primary()
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # Replicas hold the same rows as the primary.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == PRIMARY


# --- scopes: per request, per job -----------------------------------------------------------


class RequestPinMiddleware:
    """Each request starts unpinned; its first write pins it to the primary."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if iscoroutinefunction(self):
            return self.__acall__(request)  # type: ignore[attr-defined]
        with primary_pin_scope():
            return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        with primary_pin_scope():
            return await self.get_response(request)


_job_tokens: dict[str, Any] = {}


def job_started(task_id: str | None = None, **_: Any) -> None:
    """Celery task_prerun: a fresh scope for the job."""
    _job_tokens[task_id or ""] = _pin.set(_Pin())


def job_finished(task_id: str | None = None, **_: Any) -> None:
    """Celery task_postrun: back to the worker's own scope."""
    token = _job_tokens.pop(task_id or "", None)
    if token is not None:
        try:
            _pin.reset(token)
        except ValueError:  # set in another context (a different thread ran prerun)
            _pin.set(None)


def connect_celery_signals() -> None:
    from celery import signals

    signals.task_prerun.connect(job_started, weak=False, dispatch_uid="db_router.job_started")
    signals.task_postrun.connect(job_finished, weak=False, dispatch_uid="db_router.job_finished")
