"""Chat over a real server: live message events, presence in the member list, and
``message.send`` over the socket (acked, idempotent, members only)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async

from backend.messaging.models import Message, Room
from tests.e2e.conftest import WS, OpenWS, Server, make_user
from tests.factories import RoomFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def make_room(*members: Any) -> Room:
    return await database_sync_to_async(RoomFactory)(members=list(members), created_by=members[0])


async def message_count() -> int:
    return await database_sync_to_async(Message.objects.count)()


def api(server: Server, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{server.http}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


async def next_message(ws: WS, topic: str) -> dict[str, Any]:
    frame = await ws.recv_event("message.created", topic=topic)
    return frame["data"]


async def test_room_events_keep_a_copy_equal_to_the_history(
    server: Server, open_ws: OpenWS
) -> None:
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await make_room(alice, bob)
    topic = f"room.{room.pk}"
    bob_ws: WS = await open_ws(server, token=bob_token.plain_text)
    assert (await bob_ws.subscribe(topic))["type"] == "subscribed"
    copy: list[dict[str, Any]] = []  # newest first, like the history
    async with (
        api(server, alice_token.plain_text) as alice_api,
        api(server, bob_token.plain_text) as bob_api,
    ):
        for text in ("one", "two", "three"):
            sent = await alice_api.post("/messages", json={"room_id": room.pk, "body": text})
            assert sent.status_code == 201, sent.text
            copy.insert(0, await next_message(bob_ws, topic))
            history = (await bob_api.get(f"/rooms/{room.pk}/messages")).json()
            assert copy == history["items"]
            assert copy[0] == sent.json()


async def test_direct_message_reaches_both_parties_only(server: Server, open_ws: OpenWS) -> None:
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    carol, carol_token = await make_user()
    sockets = {}
    for user, token in ((alice, alice_token), (bob, bob_token), (carol, carol_token)):
        sockets[user.pk] = await open_ws(server, token=token.plain_text)
        assert (await sockets[user.pk].subscribe(f"user.{user.pk}"))["type"] == "subscribed"
    async with api(server, alice_token.plain_text) as alice_api:
        sent = await alice_api.post("/messages", json={"recipient_id": bob.pk, "body": "psst"})
        assert sent.status_code == 201, sent.text
        for user in (alice, bob):
            assert await next_message(sockets[user.pk], f"user.{user.pk}") == sent.json()
        conversation = (await alice_api.get(f"/messages?with={bob.pk}")).json()
    assert conversation["items"] == [sent.json()]
    assert await sockets[carol.pk].nothing(0.5)


async def test_member_list_shows_who_is_online(server: Server, open_ws: OpenWS) -> None:
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await make_room(alice, bob)
    bob_ws: WS = await open_ws(server, token=bob_token.plain_text)
    await bob_ws.subscribe(f"room.{room.pk}")
    async with api(server, alice_token.plain_text) as alice_api:
        members = (await alice_api.get(f"/rooms/{room.pk}/members")).json()
        assert {m["user_id"]: m["online"] for m in members} == {alice.pk: False, bob.pk: True}
        await bob_ws.close()
        # Presence ends as the server handles the close: poll for it.
        for _ in range(100):
            members = (await alice_api.get(f"/rooms/{room.pk}/members")).json()
            if not any(m["online"] for m in members):
                break
            await asyncio.sleep(0.05)
        assert not any(m["online"] for m in members)
