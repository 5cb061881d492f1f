"""Communicator helpers: the real consumer, the real Redis layer and history, no server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection

from backend.asgi import application
from realtime import hub as hub_module
from tests.e2e.conftest import PrivateRedis


class Socket:
    """A WebsocketCommunicator speaking JSON frames."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.comm = WebsocketCommunicator(application, "/ws/v1/", headers=headers or [])

    async def connect(self) -> bool:
        connected, _ = await self.comm.connect()
        return connected

    async def send(self, frame: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        message = await self.comm.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def recv_close(self, timeout: float = 3) -> int:
        while True:
            message = await self.comm.receive_output(timeout)
            if message["type"] == "websocket.close":
                return message.get("code", 1000)

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def auth(self, token: str) -> dict[str, Any]:
        await self.send({"type": "auth", "token": token})
        return await self.recv()

    async def subscribe(
        self, topic: str, since: str | None = None, id: str = "c1"
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic, "id": id}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        return await self.recv_reply()

    async def recv_reply(self, timeout: float = 3) -> dict[str, Any]:
        """The next frame that is not an event (events may interleave with replies)."""
        while True:
            frame = await self.recv(timeout)
            if frame["type"] != "event":
                return frame

    async def close(self) -> None:
        await self.comm.disconnect()


@pytest.fixture
async def open_socket() -> AsyncIterator[Any]:
    sockets: list[Socket] = []

    async def factory(
        token: str | None = None, headers: list[tuple[bytes, bytes]] | None = None
    ) -> Socket:
        socket = Socket(headers)
        assert await socket.connect()
        sockets.append(socket)
        if token is not None:
            answer = await socket.auth(token)
            assert answer["type"] == "auth.ok", answer
        return socket

    yield factory
    for socket in sockets:
        with contextlib.suppress(Exception):  # already closed by the server
            await socket.close()
    # Stop this loop's hub so its tasks do not outlive the test's event loop.
    loop = asyncio.get_running_loop()
    hub = hub_module._hubs.pop(loop, None)
    if hub is not None:
        for task in hub._tasks:
            task.cancel()
        await asyncio.gather(*hub._tasks, return_exceptions=True)


def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
    return database_sync_to_async(func)(*args, **kwargs)


@pytest.fixture
def two_redis() -> Iterator[tuple[PrivateRedis, PrivateRedis]]:
    """Two redis-servers of this test's own (several realtime instances)."""
    first, second = PrivateRedis(), PrivateRedis()
    first.start()
    second.start()
    yield first, second
    first.kill()
    second.kill()


def run_writers(count: int, write: Callable[[int], None]) -> None:
    """``write(index)`` in ``count`` threads that start together, each closing its database
    connection at the end; fails with the first error any of them raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def writer(index: int) -> None:
        try:
            start.wait()
            write(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
