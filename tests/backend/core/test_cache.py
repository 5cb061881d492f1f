"""The Redis cache shares one connection pool per process across request contexts."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.core.cache import cache, caches


def _pool_of_this_context() -> int:
    cache.get("pool-probe")  # the first use in a context builds that context's cache object
    return id(caches["default"]._cache._get_connection_pool(False))


def test_every_request_context_uses_the_same_connection_pool() -> None:
    async def requests() -> set[int]:
        # Each ASGI request is a task of its own, with a context of its own.
        return {await asyncio.create_task(sync_to_async(_pool_of_this_context)()) for _ in range(5)}

    assert len(asyncio.run(requests())) == 1
