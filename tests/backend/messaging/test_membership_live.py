"""Membership changes reach live sockets: a removed member's room subscription ends, and
room.updated carries the room as GET shows it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backend.messaging import selectors, services
from realtime.publish import serialize
from tests.factories import RoomFactory, UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def frames_until(socket: Any, predicate: Any) -> dict[str, Any]:
    while True:
        frame = await socket.recv()
        if predicate(frame):
            return frame


async def test_removed_member_is_unsubscribed_and_others_see_the_new_room(
    open_socket: Any,
) -> None:
    creator, bob = await run_sync(UserFactory), await run_sync(UserFactory)
    room = await run_sync(RoomFactory, created_by=creator, members=[creator, bob])
    topic = f"room.{room.pk}"
    c = await open_socket(await run_sync(bearer_for, creator))
    b = await open_socket(await run_sync(bearer_for, bob))
    await c.subscribe(topic)
    await b.subscribe(topic)

    await run_sync(services.room_member_remove, actor=creator, room_id=room.pk, user_id=bob.pk)

    ended = await frames_until(b, lambda f: f["type"] == "unsubscribed")
    assert ended["topic"] == topic
    updated = await frames_until(c, lambda f: f.get("event") == "room.updated")
    fresh = await run_sync(
        lambda: selectors.room_representation(
            selectors.room_get_for_member(actor=creator, room_id=room.pk)
        )
    )
    assert updated["data"]["member_ids"] == [creator.pk]
    assert updated["data"] == json.loads(serialize(fresh))  # as GET /rooms/{id} shows it
    # Bob may not come back on his own.
    await b.send({"type": "subscribe", "topic": topic, "id": "again"})
    refused = await frames_until(b, lambda f: f.get("id") == "again")
    assert (refused["type"], refused["code"]) == ("error", "not_found")
