"""The sockets' deadlines on one loop timer (realtime.consumer.Deadlines)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from realtime.consumer import Deadlines, RealtimeConsumer


class Recorded(RealtimeConsumer):
    """A consumer that is never connected: it records the closes its deadline asks for."""

    def __init__(self, fired: list[tuple[str, int]], name: str) -> None:
        super().__init__()
        self.fired, self.name = fired, name

    def _close_soon(self, code: int) -> None:
        self.fired.append((self.name, code))


async def test_deadlines_fire_in_order_and_a_newer_one_replaces_the_older() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    fired: list[tuple[str, int]] = []
    a, b, c = (Recorded(fired, name) for name in "abc")
    deadlines.set(a, 0.06, 1)
    deadlines.set(b, 0.02, 2)
    deadlines.set(c, 0.01, 3)
    deadlines.set(c, 0.04, 4)  # c authenticated: its auth deadline no longer counts
    await asyncio.sleep(0.1)
    assert fired == [("b", 2), ("c", 4), ("a", 1)]
    assert deadlines.heap == [] and deadlines.timer is None


async def test_a_cancelled_deadline_does_not_fire_and_stale_entries_are_dropped() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    fired: list[tuple[str, int]] = []
    sockets = [Recorded(fired, str(n)) for n in range(200)]
    for socket in sockets:
        deadlines.set(socket, 3600, 4401)
    for socket in sockets[:150]:
        deadlines.cancel(socket)  # disconnected long before their tokens expire
    assert len(deadlines.heap) < 200  # compacted once stale entries outnumbered live ones
    assert {entry[1] for entry in deadlines.heap} >= {s._deadline for s in sockets[150:]}
    deadlines.set(sockets[0], 0.01, 4401)
    deadlines.cancel(sockets[0])
    await asyncio.sleep(0.05)
    assert fired == []
    assert deadlines.timer is not None  # armed for the hour-long deadlines still due


async def test_a_pending_deadline_does_not_keep_a_closed_socket_alive() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    fired: list[tuple[str, int]] = []
    socket = Recorded(fired, "gone")
    deadlines.set(socket, 0.02, 4401)
    gone = weakref.ref(socket)
    del socket
    gc.collect()
    assert gone() is None
    await asyncio.sleep(0.05)
    assert fired == []
