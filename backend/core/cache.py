"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per thread *and per async context* (``caches`` is an asgiref
``Local``), and every ASGI request runs in a context of its own, so each request built a new
``RedisCache``, a new connection pool and a new TCP connection to Redis (with redis-py's
handshake and a package-metadata lookup): most of a cached read's time. Named as the
``pool_class`` option of the cache (backend/settings.py), this pool class hands every cache
object the same pool per URL and options; the pool itself is thread-safe and starts afresh in
a forked child (redis-py checks the pid).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import redis


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
