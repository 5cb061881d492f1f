"""The pooled ASGI handler (backend/core/asgi.py): one hop to the request's thread for a plain
response, Django's signals once each, streaming responses still streamed and stopped on a
disconnect."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

from backend.core.asgi import PooledThreadsASGIHandler
from tests.asgi import http_scope, pooled_handler

closed: list[str] = []


def plain(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(b'{"a": 1}', content_type="application/json")
    response.set_cookie("c", "v")
    return response


def big(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"x" * (PooledThreadsASGIHandler.chunk_size * 2 + 5))


async def _parts(count: int) -> AsyncIterator[bytes]:
    try:
        for n in range(count):
            yield f"part{n};".encode()
            await asyncio.sleep(0.001)  # a real stream waits for its source
    finally:
        closed.append("generator")


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_parts(3))


def endless(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_parts(10**9))


urlpatterns = [
    path("plain", plain),
    path("big", big),
    path("streamed", streamed),
    path("endless", endless),
]


@pytest.fixture
def handler(settings: Any) -> Iterator[PooledThreadsASGIHandler]:
    settings.ROOT_URLCONF = __name__
    closed.clear()
    with pooled_handler() as handler:
        yield handler


@pytest.fixture
def fired() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def started(**_: Any) -> None:
        seen.append(("started", threading.current_thread().name))

    def finished(**_: Any) -> None:
        seen.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


async def _body(app: ApplicationCommunicator) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    start = await app.receive_output(5)
    parts = [await app.receive_output(5)]
    while parts[-1].get("more_body"):
        parts.append(await app.receive_output(5))
    return start, parts


def _count_hops(handler: PooledThreadsASGIHandler) -> list[int]:
    executor = handler.executors[0]
    submit = executor.submit
    hops = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        hops[0] += 1
        return submit(*args, **kwargs)

    executor.submit = counted  # type: ignore[method-assign]
    return hops


async def test_a_plain_response_takes_one_hop_with_the_signals_on_its_thread(
    handler: PooledThreadsASGIHandler, fired: list[tuple[str, str]]
) -> None:
    hops = _count_hops(handler)
    app = ApplicationCommunicator(handler, http_scope("/plain"))
    await app.send_input({"type": "http.request", "body": b""})
    start, parts = await _body(app)
    await app.wait(5)
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"Content-Type"] == b"application/json"
    assert any(
        name == b"Set-Cookie" and value.startswith(b"c=v") for name, value in start["headers"]
    )
    assert [part["body"] for part in parts] == [b'{"a": 1}']
    # Stock Django: request_started (asend), the response and response.close(): three.
    assert hops[0] == 1
    assert [name for name, _ in fired] == ["started", "finished"]
    assert all(thread.startswith("django-sync-0") for _, thread in fired)


async def test_a_large_plain_body_is_sent_in_chunks(handler: PooledThreadsASGIHandler) -> None:
    app = ApplicationCommunicator(handler, http_scope("/big"))
    await app.send_input({"type": "http.request", "body": b""})
    _, parts = await _body(app)
    await app.wait(5)
    assert len(parts) == 3
    assert sum(len(part["body"]) for part in parts) == handler.chunk_size * 2 + 5


async def test_a_streaming_response_is_streamed_then_closed(
    handler: PooledThreadsASGIHandler, fired: list[tuple[str, str]]
) -> None:
    app = ApplicationCommunicator(handler, http_scope("/streamed"))
    await app.send_input({"type": "http.request", "body": b""})
    start, parts = await _body(app)
    await app.wait(5)
    assert start["status"] == 200
    assert [part.get("body", b"") for part in parts] == [b"part0;", b"part1;", b"part2;", b""]
    assert all(part["more_body"] for part in parts[:-1])
    assert closed == ["generator"]
    assert [name for name, _ in fired] == ["started", "finished"]


@pytest.mark.timeout(20)
async def test_a_disconnect_stops_a_stream_and_still_closes_it(
    handler: PooledThreadsASGIHandler, fired: list[tuple[str, str]]
) -> None:
    app = ApplicationCommunicator(handler, http_scope("/endless"))
    await app.send_input({"type": "http.request", "body": b""})
    assert (await app.receive_output(5))["status"] == 200
    assert (await app.receive_output(5))["more_body"] is True
    await app.send_input({"type": "http.disconnect"})
    await app.wait(5)
    assert closed == ["generator"]
    assert [name for name, _ in fired] == ["started", "finished"]


async def test_a_disconnect_before_the_body_answers_nothing(
    handler: PooledThreadsASGIHandler, fired: list[tuple[str, str]]
) -> None:
    app = ApplicationCommunicator(handler, http_scope("/plain"))
    await app.send_input({"type": "http.disconnect"})
    await app.wait(5)
    assert await app.receive_nothing()
    assert fired == []


def test_the_one_thread_executor_runs_calls_in_order_on_its_thread() -> None:
    from backend.core.asgi import OneThreadExecutor

    executor = OneThreadExecutor("one-thread-test")
    try:
        seen: list[tuple[int, str]] = []
        futures = [
            executor.submit(lambda n=n: seen.append((n, threading.current_thread().name)) or n)
            for n in range(20)
        ]
        assert [f.result(5) for f in futures] == list(range(20))
        assert seen == [(n, "one-thread-test") for n in range(20)]
        failing = executor.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(5)
        assert executor.submit(lambda: "still running").result(5) == "still running"
    finally:
        executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        executor.submit(lambda: None)
