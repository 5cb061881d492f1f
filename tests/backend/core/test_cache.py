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


def _client_of_this_context() -> tuple[int, int]:
    cache.get("client-probe")
    shared = caches["default"]._cache
    return id(shared), id(shared.get_client(None))


def test_every_request_context_shares_one_client_and_one_redis_object() -> None:
    async def requests() -> set[tuple[int, int]]:
        return {
            await asyncio.create_task(sync_to_async(_client_of_this_context)()) for _ in range(5)
        }

    assert len(asyncio.run(requests())) == 1
    # Django's own client made a new redis.Redis for every call.
    client = caches["default"]._cache
    assert client.get_client("a") is client.get_client("b", write=True)
    cache.set("shared-client-probe", {"n": 1}, 10)
    assert cache.get_many(["shared-client-probe"]) == {"shared-client-probe": {"n": 1}}
