"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per thread *and per async context* (``caches`` is an asgiref
``Local``), and every ASGI request runs in a context of its own, so each request built a new
``RedisCache``, a new connection pool and a new TCP connection to Redis (with redis-py's
handshake and a package-metadata lookup): most of a cached read's time. Named as the
``pool_class`` option of the cache (backend/settings.py), this pool class hands every cache
object the same pool per URL and options; the pool itself is thread-safe and starts afresh in
a forked child (redis-py checks the pid).

:class:`RedisCache` goes further: every cache object of a process shares one client per
location and options, and that client one ``redis.Redis`` per pool. Django's client builds a
new ``redis.Redis`` for every cache call (its ``__init__`` copies some two hundred response
callbacks), and a new client object per request context: together about a quarter of a cached
catalog read's CPU. A ``redis.Redis`` is safe to share between threads (each command takes a
connection from the pool).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import redis
from django.core.cache.backends import redis as django_redis
from django.utils.functional import cached_property


class SharedConnectionPool(redis.ConnectionPool):
    _shared: ClassVar[dict[tuple[str, str], redis.ConnectionPool]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        key = (url, repr(sorted(kwargs.items())))
        with cls._shared_lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
        return pool


class SharedRedisCacheClient(django_redis.RedisCacheClient):
    """Django's client with one ``redis.Redis`` per pool, made on first use."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        django_client: Any = self  # Django's private attributes, not in the type stubs
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            # Two threads may both get here: one client is dropped, both work.
            pool = django_client._get_connection_pool(write)
            client = self._clients[index] = django_client._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """Django's Redis cache whose objects (one per request context) share one client."""

    _shared_clients: ClassVar[dict[str, SharedRedisCacheClient]] = {}
    _shared_clients_lock: ClassVar[threading.Lock] = threading.Lock()

    @cached_property
    def _cache(self) -> SharedRedisCacheClient:
        django_cache: Any = self  # Django's private attributes, not in the type stubs
        servers, options = django_cache._servers, django_cache._options
        key = repr((servers, sorted(options.items())))
        client = self._shared_clients.get(key)
        if client is None:
            with self._shared_clients_lock:
                client = self._shared_clients.get(key)
                if client is None:
                    client = SharedRedisCacheClient(servers, **options)
                    self._shared_clients[key] = client
        return client
