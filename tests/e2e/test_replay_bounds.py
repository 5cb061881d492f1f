"""Replay is bounded like live delivery: a socket that asks for replays again and again
without reading is closed (4008), and the server's memory stays bounded."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from realtime.history import get_history
from tests.e2e.conftest import WS, OpenWS, ServerPool, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

EVENTS = 300
EVENT_BYTES = 20 * 1024
RESUBSCRIBES = 40  # without the bound: 40 replays of ~6 MB queued for one socket


def reset_peak_rss(pid: int) -> None:
    """Start the process's peak (VmHWM) over from its current memory: a start-up peak (the
    compiling of modules that have no bytecode cache yet) would hide the growth measured."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


async def test_resubscribing_with_since_without_reading_is_closed_and_memory_stays_bounded(
    server_pool: ServerPool, open_ws: OpenWS
) -> None:
    # A server of its own: its peak memory is this test's alone.
    server = server_pool.get("replay-bound", WS_SEND_QUEUE_BYTES=str(256 * 1024))
    assert server.proc is not None
    me, issued = await make_user()
    topic = f"user.{me.pk}"
    blob = "x" * EVENT_BYTES

    def fill_history() -> None:
        history = get_history()
        for n in range(EVENTS):
            history.append(topic, "user.updated", f'{{"n":{n},"blob":"{blob}"}}')

    await asyncio.to_thread(fill_history)
    # Warm the server up (hub, database connection, one replay) before the baseline.
    warm: WS = await open_ws(server, issued.plain_text, max_queue=None)
    first = await warm.subscribe(topic, since="0:0")
    assert first["recovered"] is True
    assert len(await warm.drain(0.5)) == EVENTS
    await warm.close()
    reset_peak_rss(server.proc.pid)
    baseline = peak_rss_bytes(server.proc.pid)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    # max_queue=1: the client library stops reading from TCP as soon as one frame waits.
    greedy: WS = await open_ws(server, issued.plain_text, sock=sock, max_queue=1)
    since = f"{first['offset'].rpartition(':')[0]}:0"
    log_start = server.log_size()
    with contextlib.suppress(ConnectionClosed):
        for n in range(RESUBSCRIBES):
            await greedy.send({"type": "subscribe", "topic": topic, "since": since, "id": n})

    # Not reading: the server must give up on this socket by itself.
    deadline = asyncio.get_running_loop().time() + 40
    while not any(
        phrase in server.log_text(log_start)
        for phrase in ("does not read its replay", "reads too slowly")
    ):
        assert asyncio.get_running_loop().time() < deadline, "the socket was never closed"
        await asyncio.sleep(0.2)
    growth = peak_rss_bytes(server.proc.pid) - baseline
    # Measured: 5 MiB (1 re-subscription: 2 MiB); 67 MiB while each cancelled replay kept
    # its page of events until the cyclic collector ran.
    assert growth < 24 * 1024 * 1024, f"server peak memory grew by {growth / 2**20:.0f} MiB"

    received = 0

    async def drain() -> int | None:
        nonlocal received
        with contextlib.suppress(ConnectionClosed):
            while True:
                await greedy.conn.recv()
                received += 1
        return greedy.conn.close_code

    # Closed once it has not read for SEND_STALL_TIMEOUT (10 s); re-subscribing does not
    # restart that clock. 4008 when the close frame is read; 1006 when daphne dropped the
    # connection first.
    assert await asyncio.wait_for(drain(), 30) in (4008, 1006)
    assert received < 2 * EVENTS
    assert server.alive()
