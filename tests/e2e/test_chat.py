"""Chat over a real server: live message events, presence in the member list, and
``message.send`` over the socket (acked, idempotent, members only)."""

from __future__ import annotations

import asyncio
import uuid
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


async def test_socket_send_is_acked_and_a_retry_after_reconnect_stores_nothing(
    server: Server, open_ws: OpenWS
) -> None:
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await make_room(alice, bob)
    topic = f"room.{room.pk}"
    bob_ws: WS = await open_ws(server, token=bob_token.plain_text)
    await bob_ws.subscribe(topic)
    key = str(uuid.uuid4())
    frame = {"type": "message.send", "room_id": room.pk, "body": "hi", "client_msg_id": key}

    first_ws: WS = await open_ws(server, token=alice_token.plain_text)
    await first_ws.send({**frame, "id": 1})
    ack, _ = await first_ws.recv_until(lambda f: f.get("type") == "ack")
    assert ack == {"type": "ack", "client_msg_id": key, "message_id": ack["message_id"], "id": 1}
    created = await next_message(bob_ws, topic)
    assert created["id"] == ack["message_id"]
    # The client lost the ack (say) and resends on a new connection: same ack, no new row.
    await first_ws.close()
    second_ws: WS = await open_ws(server, token=alice_token.plain_text)
    await second_ws.send({**frame, "id": 2})
    again, _ = await second_ws.recv_until(lambda f: f.get("type") == "ack")
    assert again == {**ack, "id": 2}
    assert await message_count() == 1
    later = [
        f for f in await bob_ws.drain() if f.get("event") == "message.created"
    ]  # nothing more for the room
    assert later == []
    # REST with the same key answers the same message.
    async with api(server, alice_token.plain_text) as alice_api:
        answer = await alice_api.post(
            "/messages", json={"room_id": room.pk, "body": "hi", "client_msg_id": key}
        )
    assert answer.status_code == 201
    assert answer.json() == created
    assert await message_count() == 1


async def test_socket_send_to_a_room_one_is_not_in_is_forbidden(
    server: Server, open_ws: OpenWS
) -> None:
    alice, _ = await make_user()
    _mallory, mallory_token = await make_user()
    room = await make_room(alice)
    ws: WS = await open_ws(server, token=mallory_token.plain_text)
    await ws.send({"type": "message.send", "room_id": room.pk, "body": "x", "id": "m"})
    error, _ = await ws.recv_until(lambda f: f.get("type") == "error")
    assert (error["code"], error["id"]) == ("forbidden", "m")
    assert await message_count() == 0
