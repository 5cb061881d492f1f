"""``message.send`` over the socket (the real consumer, Redis layer and history): acked,
idempotent per client_msg_id, members only, bad payloads answered with error frames."""

from __future__ import annotations

from typing import Any

import pytest

from backend.messaging.models import Message
from tests.factories import RoomFactory, UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def next_event(socket: Any, name: str) -> dict[str, Any]:
    while True:
        frame = await socket.recv()
        if frame["type"] == "event" and frame["event"] == name:
            return frame


async def message_events(socket: Any) -> list[dict[str, Any]]:
    """The message.created events among the frames that arrive until the socket is quiet."""
    frames = []
    while not await socket.nothing(0.3):
        frames.append(await socket.recv())
    return [f for f in frames if f["type"] == "event" and f["event"] == "message.created"]


async def message_rows() -> list[tuple[int, str]]:
    return await run_sync(lambda: list(Message.objects.order_by("id").values_list("id", "body")))


async def room_of_two(open_socket: Any) -> tuple[Any, Any, Any, Any]:
    alice, bob = await run_sync(UserFactory), await run_sync(UserFactory)
    room = await run_sync(RoomFactory, members=[alice, bob], created_by=alice)
    a = await open_socket(await run_sync(bearer_for, alice))
    b = await open_socket(await run_sync(bearer_for, bob))
    await b.subscribe(f"room.{room.pk}")
    return room, alice, a, b


async def test_send_is_acked_and_reaches_the_room(open_socket: Any) -> None:
    room, alice, a, b = await room_of_two(open_socket)
    await a.send(
        {"type": "message.send", "room_id": room.pk, "body": "hi", "client_msg_id": "c-1", "id": 7}
    )
    ack = await a.recv_reply()
    rows = await message_rows()
    assert ack == {"type": "ack", "client_msg_id": "c-1", "message_id": rows[0][0], "id": 7}
    event = await next_event(b, "message.created")
    assert event["topic"] == f"room.{room.pk}"
    assert event["data"]["id"] == ack["message_id"]
    assert (event["data"]["sender_id"], event["data"]["body"]) == (alice.pk, "hi")


async def test_a_resent_frame_stores_once_and_gets_the_same_ack(open_socket: Any) -> None:
    room, _alice, a, b = await room_of_two(open_socket)
    frame = {"type": "message.send", "room_id": room.pk, "body": "once", "client_msg_id": "u-9"}
    acks = []
    for _ in range(3):
        await a.send(frame)
        acks.append(await a.recv_reply())
    assert acks[0] == acks[1] == acks[2]
    assert len(await message_rows()) == 1
    assert len(await message_events(b)) == 1  # one event, not three


async def test_direct_send_reaches_both_parties(open_socket: Any) -> None:
    alice, bob = await run_sync(UserFactory), await run_sync(UserFactory)
    a = await open_socket(await run_sync(bearer_for, alice))
    b = await open_socket(await run_sync(bearer_for, bob))
    await a.subscribe(f"user.{alice.pk}")
    await b.subscribe(f"user.{bob.pk}")
    await a.send({"type": "message.send", "recipient_id": bob.pk, "body": "psst"})
    # The event may arrive before the ack (it is relayed on commit, the ack follows).
    frames = [await a.recv(), await a.recv()]
    (ack,) = [f for f in frames if f["type"] == "ack"]
    (own_event,) = [f for f in frames if f["type"] == "event"]
    assert ack["client_msg_id"] is None
    for event in (own_event, await next_event(b, "message.created")):
        assert event["event"] == "message.created"
        assert (event["data"]["id"], event["data"]["recipient_id"]) == (ack["message_id"], bob.pk)


async def test_non_members_and_users_without_chat_use_are_forbidden(open_socket: Any) -> None:
    room, _alice, _a, b = await room_of_two(open_socket)
    outsider = await open_socket(await run_sync(bearer_for, await run_sync(UserFactory)))
    no_rights_user = await run_sync(UserFactory, roles=[])
    await run_sync(room.memberships.create, user=no_rights_user)
    no_rights = await open_socket(await run_sync(bearer_for, no_rights_user))
    for socket in (outsider, no_rights):
        for room_id in (room.pk, 999_999):
            await socket.send({"type": "message.send", "room_id": room_id, "body": "x", "id": "s1"})
            error = await socket.recv_reply()
            assert (error["type"], error["code"], error["id"]) == ("error", "forbidden", "s1")
    assert await message_rows() == []
    assert await message_events(b) == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"room_id": "5", "body": "x"}, "bad_request"),
        ({"room_id": True, "body": "x"}, "bad_request"),
        ({"room_id": 0, "body": "x"}, "bad_request"),
        ({"room_id": 2**70, "body": "x"}, "bad_request"),
        ({"room_id": "{room}"}, "bad_request"),
        ({"room_id": "{room}", "body": 5}, "bad_request"),
        ({"body": "no target"}, "validation_error"),
        ({"room_id": "{room}", "recipient_id": 1, "body": "x"}, "validation_error"),
        ({"room_id": "{room}", "body": "   "}, "validation_error"),
        ({"room_id": "{room}", "body": "x" * 4001}, "validation_error"),
        ({"room_id": "{room}", "body": "\ud800"}, "validation_error"),
        ({"room_id": "{room}", "body": "x", "client_msg_id": "has space"}, "validation_error"),
        ({"room_id": "{room}", "body": "x", "client_msg_id": 5}, "bad_request"),
    ],
)
async def test_bad_payloads_get_error_frames(
    open_socket: Any, payload: dict[str, Any], code: str
) -> None:
    room, _alice, a, _b = await room_of_two(open_socket)
    frame = {k: room.pk if v == "{room}" else v for k, v in payload.items()}
    await a.send({"type": "message.send", **frame, "id": "bad"})
    error = await a.recv_reply()
    assert (error["type"], error["code"], error["id"]) == ("error", code, "bad")
    assert await message_rows() == []
    await a.send({"type": "ping"})
    assert await a.recv_reply() == {"type": "pong"}  # the socket lives on
