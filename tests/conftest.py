"""Shared fixtures: real MariaDB (pytest-django's test database) and real Redis (db 15)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from backend.accounts.models import User
from tests.factories import UserFactory, bearer_for


def _delete_keys(pattern: str) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)


def _run_key_patterns() -> list[str]:
    """Where this run's keys live: the cache, the channel layer, the realtime store, and the
    Celery queue (kombu keeps the queue's list and its bindings under the queue's name; beat
    workers a test starts get queues named after it)."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    patterns = [
        f"{settings.CACHES['default']['KEY_PREFIX']}:*",
        f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:*",
        f"{settings.REALTIME_KEY_PREFIX}:*",
    ]
    for name in (queue, f"{queue}-*"):
        patterns += [name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}"]
    return patterns


def _keys_naming_the_run(client: redis.Redis) -> list[bytes]:
    """Keys outside the patterns above that still carry this run's id: a leak to fix."""
    run_id = re.escape(os.environ["TEST_RUN_ID"].encode())
    marker = re.compile(rb"(?<![0-9A-Za-z])" + run_id + rb"(?![0-9A-Za-z])")
    return [
        key
        for key in client.scan_iter(match=f"*{os.environ['TEST_RUN_ID']}*", count=1000)
        if marker.search(key)
    ]


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> Iterator[None]:
    # Set up first, torn down last: servers and workers the suite starts have stopped.
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in _run_key_patterns():
        _delete_keys(pattern)
    left = sorted(_keys_naming_the_run(client))
    if left:
        client.delete(*left)
        pytest.fail(
            f"this run left {len(left)} Redis key(s) outside its prefixes (now deleted), e.g. "
            f"{[key.decode(errors='replace') for key in left[:5]]}: keep test keys under the "
            "prefixes in tests/settings.py",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    # Throttle counters live in the cache; each test starts with none. Only this run's keys:
    # cache.clear() would flush the whole Redis database under other runs' feet.
    _delete_keys(f"{settings.CACHES['default']['KEY_PREFIX']}:*")
    yield


class ApiClient:
    """A thin JSON client for /api/v1/ with an optional bearer token."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        raw: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        **extra: Any,
    ):
        import json as jsonlib

        url = (
            path
            if path.startswith("/")
            and not path.startswith("/api/")
            and path in ("/health", "/metrics")
            else (path if path.startswith("/api/") else f"/api/v1{path}")
        )
        data = raw if raw is not None else (jsonlib.dumps(json) if json is not None else None)
        kwargs: dict[str, Any] = {"headers": self._headers(headers), **extra}
        if data is not None:
            kwargs.update(data=data, content_type=content_type)
        return getattr(self.client, method.lower())(url, **kwargs)

    def get(self, path: str, **kw: Any):
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any):
        return self.request("POST", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any):
        return self.request("PUT", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any):
        return self.request("PATCH", path, json, **kw)

    def delete(self, path: str, **kw: Any):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def anon() -> ApiClient:
    return ApiClient()


@pytest.fixture
def customer(db: None) -> User:
    return UserFactory(roles=["Customer"])


@pytest.fixture
def editor(db: None) -> User:
    return UserFactory(roles=["Editor"])


@pytest.fixture
def admin_user(db: None) -> User:
    return UserFactory(roles=["Admin"])


@pytest.fixture
def as_customer(customer: User) -> ApiClient:
    return ApiClient(bearer_for(customer))


@pytest.fixture
def as_editor(editor: User) -> ApiClient:
    return ApiClient(bearer_for(editor))


@pytest.fixture
def as_admin(admin_user: User) -> ApiClient:
    return ApiClient(bearer_for(admin_user))


# A private MariaDB with binary logs (backup and point-in-time recovery tests), and the
# loopback S3 server (moto) for any test that stores objects in S3.
from tests.mariadb import private_mariadb  # noqa: E402, F401
from tests.s3 import s3_server, s3_storage  # noqa: E402, F401
