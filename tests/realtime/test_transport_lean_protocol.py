"""realtime.transport's lean uvicorn protocol: websockets-sansio with leaner containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from realtime.transport import LeanEvent, LeanQueue

ROOT = Path(__file__).resolve().parents[2]


async def test_queue_hands_items_over_in_order_to_waiting_getters_first_come_first_served() -> None:
    queue = LeanQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert queue.empty() and queue.qsize() == 0
    queue.put_nowait("a")
    queue.put_nowait("b")
    queue.put_nowait("c")
    assert [await first, await second] == ["a", "b"]
    assert queue.qsize() == 1 and await queue.get() == "c"


async def test_a_getter_cancelled_after_its_wake_up_passes_the_item_on() -> None:
    queue = LeanQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")
    first.cancel()  # woken, but cancelled before it ran
    assert await asyncio.wait_for(second, 1) == "a"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_event_wakes_its_waiters_and_wait_returns_at_once_when_set() -> None:
    event = LeanEvent()
    waiter = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    assert not waiter.done() and not event.is_set()
    event.set()
    assert await asyncio.wait_for(waiter, 1) is True
    assert await event.wait() is True
    event.clear()
    assert not event.is_set()


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def lean_uvicorn() -> Iterator[int]:
    port = _free_port()
    command = [
        str(ROOT / ".venv" / "bin" / "uvicorn"), "tests.realtime.transport_app:app",
        "--port", str(port), "--ws", "realtime.transport:LeanWebSocketsSansIOProtocol",
        "--ws-per-message-deflate", "false", "--lifespan", "off", "--loop", "uvloop",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "uvicorn exited"
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


async def test_a_real_uvicorn_serves_sockets_with_the_lean_protocol(lean_uvicorn: int) -> None:
    async with connect(f"ws://127.0.0.1:{lean_uvicorn}/", compression=None) as ws:
        # realtime/transport.py knows the subclass: frames go straight to its transport.
        assert json.loads(await ws.recv())["direct"] is True
        for _ in range(3):  # messages both ways, more than once: the queue is reused
            await ws.send(json.dumps({"do": "burst", "count": 20, "pad": 10}))
            frames = [json.loads(await ws.recv()) for _ in range(21)]
            assert [f["n"] for f in frames[:20]] == list(range(20))
            assert frames[20] == {"done": True}
