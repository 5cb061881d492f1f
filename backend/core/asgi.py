"""Django's ASGI handler on a fixed set of long-lived threads, one hop per request.

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

``handle`` is Django's, reordered so that a request costs one hop, not three: the body is read
on the event loop, then ``request_started``, the request, the middleware chain and view, the
response headers and ``response.close()`` (``request_finished``: connections closed or kept
per ``CONN_MAX_AGE``) all run in one call on the request's thread, and the bytes are sent
from the loop. Stock Django hops for each of ``request_started`` (``asend`` with sync
receivers), the response and ``response.close()``, and runs the response in a task beside a
disconnect listener. The listener only served to cancel the awaiting task: a sync view runs
to its end anyway, so a plain response is simply sent (the server drops it when the client
has gone). Streaming responses (``FileResponse`` downloads) keep Django's way: sent from the
loop chunk by chunk, stopped when the client disconnects, closed afterwards in a hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.urls import set_script_prefix

from backend.core import browser_only


class OneThreadExecutor(Executor):
    """One long-lived thread that runs the calls given to it in order: what a
    ``ThreadPoolExecutor(max_workers=1)`` does, for about half its work per call (no item
    objects, locks, semaphores or idle-thread accounting; a ``SimpleQueue`` in C)."""

    def __init__(self, name: str) -> None:
        self._calls: SimpleQueue[tuple[Future[Any], Callable[..., Any], Any, Any] | None] = (
            SimpleQueue()
        )
        self._shutdown = False
        # A daemon: the server finishes its requests before it exits (graceful shutdown).
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot schedule new calls after shutdown")
        future: Future[Any] = Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args, kwargs = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # as ThreadPoolExecutor: the caller gets it
                future.set_exception(exc)
            del call, future, fn, args, kwargs  # no references kept while idle

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        self._calls.put(None)
        if wait:
            self._thread.join()


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self, threads: int | None = None) -> None:
        super().__init__()
        count = threads if threads is not None else settings.ASGI_SYNC_THREADS
        self.executors = [OneThreadExecutor(f"django-sync-{n}") for n in range(max(1, count))]
        self.in_flight = [0] * len(self.executors)
        self.api_handler = browser_only.ApiHandler()
        self.api_handler.load_middleware()

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

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            respond = sync_to_async(self.respond, thread_sensitive=True)
            response, headers = await respond(scope, body_file)
            if response.streaming:
                await self.send_streaming(response, receive, send)
                return
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            content = response.content  # type: ignore[attr-defined]
            if len(content) <= self.chunk_size:
                await send({"type": "http.response.body", "body": content})
            else:
                for chunk, last in self.chunk_bytes(content):
                    await send({"type": "http.response.body", "body": chunk, "more_body": not last})
        finally:
            body_file.close()

    def respond(
        self, scope: dict[str, Any], body_file: Any
    ) -> tuple[HttpResponseBase, list[tuple[bytes, bytes]]]:
        """Everything sync of one request, on its thread: the signals, the request, the
        response, its headers; a plain response is closed here (its bytes are ready)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            # The API's chain has no browser middleware (backend/core/browser_only.py).
            handler = self.api_handler if browser_only.is_api(request) else self
            response = handler.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        assert response is not None
        if response.streaming:
            return response, []
        headers = [
            (
                header.encode("ascii") if isinstance(header, str) else bytes(header),
                value.encode("latin1") if isinstance(value, str) else bytes(value),
            )
            for header, value in response.items()
        ]
        for cookie in response.cookies.values():
            headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
        response.close()
        return response, headers

    async def send_streaming(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Django's way for a streaming response: sent while a listener waits for the client
        to disconnect (which stops the sending), then closed on the request's thread."""
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(self.send_response(response, send)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done():
                    with contextlib.suppress(RequestAborted):
                        task.result()
                else:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            await sync_to_async(response.close, thread_sensitive=True)()
