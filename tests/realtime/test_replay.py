"""Replays over the socket: paged, in order, restarted by a new subscribe."""

import asyncio

import pytest

from realtime.consumer import REPLAY_PAGE
from realtime.history import get_history
from realtime.publish import publish
from tests.factories import UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_long_replay_goes_out_whole_in_order_then_live(open_socket) -> None:
    """More events than one replay page: every one, in order, then the live ones."""
    user = await run_sync(UserFactory)
    topic = f"user.{user.pk}"
    socket = await open_socket(await run_sync(bearer_for, user))
    first = await socket.subscribe(topic)
    total = REPLAY_PAGE * 2 + 17

    def fill() -> None:
        for n in range(total):
            get_history().append(topic, "user.updated", f'{{"n":{n}}}')

    await asyncio.to_thread(fill)
    again = await open_socket(await run_sync(bearer_for, user))
    answer = await again.subscribe(topic, since=first["offset"])
    assert answer["recovered"] is True
    await run_sync(publish, topic, "user.updated", {"n": total})
    seen = [(await again.recv())["data"]["n"] for _ in range(total + 1)]
    assert seen == list(range(total + 1))
    assert await again.nothing(0.2)


async def test_resubscribing_during_a_replay_restarts_it(open_socket) -> None:
    user = await run_sync(UserFactory)
    topic = f"user.{user.pk}"
    socket = await open_socket(await run_sync(bearer_for, user))
    first = await socket.subscribe(topic)

    def fill() -> None:
        for n in range(300):
            get_history().append(topic, "user.updated", f'{{"n":{n}}}')

    await asyncio.to_thread(fill)
    await socket.send({"type": "subscribe", "topic": topic, "since": first["offset"], "id": 1})
    await socket.send({"type": "subscribe", "topic": topic, "since": first["offset"], "id": 2})
    frames = []
    while True:
        frame = await socket.recv()
        frames.append(frame)
        if frame.get("id") == 2:
            break
    # After the second answer: the whole replay once, in order, and nothing more.
    after = [(await socket.recv())["data"]["n"] for _ in range(300)]
    assert after == list(range(300))
    assert await socket.nothing(0.3)
