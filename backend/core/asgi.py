"""Django's ASGI handler on a fixed set of long-lived threads.

Stock Django enters a fresh ``ThreadSensitiveContext`` per request: the request's sync code
(sync middleware, sync views, the ORM) runs on a thread made for it and joined afterwards,
with a database connection opened and closed on it. Starting and joining that thread blocks
the event loop, and the connection costs a handshake per request; together they were most of
a small request's time. This handler gives each request one of ``ASGI_SYNC_THREADS``
single-thread executors instead (asgiref's ``ThreadSensitiveContext(executor=...)``), the
least busy one, so a request's sync parts still share one thread, and the thread keeps its
database connection between requests (``CONN_MAX_AGE`` with health checks).

The middleware chain is built in sync mode, as under WSGI, and a request enters it with one
hop to its thread. Built in async mode, each of Django's ``MiddlewareMixin`` middlewares
hops to the thread and back on its own (two hops per middleware, about twenty per request),
and the sync views hop once more. Async views still work: Django runs them with
``async_to_sync`` from the chain.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self, threads: int | None = None) -> None:
        super().__init__()
        count = threads if threads is not None else settings.ASGI_SYNC_THREADS
        self.executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"django-sync-{n}")
            for n in range(max(1, count))
        ]
        self.in_flight = [0] * len(self.executors)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        index = min(range(len(self.executors)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        try:
            async with ThreadSensitiveContext(executor=self.executors[index]):
                await self.handle(scope, receive, send)
        finally:
            self.in_flight[index] -= 1
