"""Garbage, floods and limits never crash the connection's process."""

import json

import pytest
from django.test import override_settings

from tests.factories import RoomFactory, UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def authed(open_socket):
    user = await run_sync(UserFactory)
    return user, await open_socket(await run_sync(bearer_for, user))


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1,2,3]",
        "null",
        '"just a string"',
        '{"no": "type"}',
        '{"type": 5}',
        '{"type": "launch.missiles"}',
        '{"type": "subscribe"}',
        '{"type": "subscribe", "topic": "user.1", "since": "garbage"}',
        '{"type": "subscribe", "topic": "user.1", "since": 12}',
        '{"type": "typing", "room_id": "5"}',
        '{"type": "typing", "room_id": true}',
        '{"type": "unsubscribe", "topic": "user.999"}',
        '{"type": "auth", "token": "again"}',
        '{"type": "\\ud800"}',  # a lone surrogate, escaped
    ],
)
async def test_bad_frames_get_error_and_connection_stays_usable(open_socket, raw) -> None:
    _, socket = await authed(open_socket)
    await socket.send_raw(raw)
    answer = await socket.recv()
    assert answer["type"] == "error"
    assert answer["code"] in {"bad_request", "not_found", "forbidden"}
    assert answer["message"]
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}


async def test_oversized_frame_closes_1009(open_socket) -> None:
    _, socket = await authed(open_socket)
    await socket.send({"type": "ping", "padding": "x" * (65 * 1024)})
    assert await socket.recv_close() == 1009


async def test_oversized_frame_before_auth_closes_1009(open_socket) -> None:
    socket = await open_socket()
    await socket.send({"type": "auth", "token": "x" * (65 * 1024)})
    assert await socket.recv_close() == 1009


@pytest.mark.parametrize(
    "token",
    [
        "²|x",
        "1²|x",
        "\u0663|x",
        "1|",
        "|x",
        "",
        "nobar",
        "99999999999999999999|x",
        7,
        None,
        ["1|x"],
    ],
)
async def test_any_token_that_is_not_live_closes_4401_at_once(open_socket, token) -> None:
    socket = await open_socket()
    await socket.send({"type": "auth", "token": token})
    # At once: well before the auth timeout (4408).
    assert await socket.recv_close(timeout=2) == 4401


async def test_wrong_secret_of_a_real_token_closes_4401(open_socket) -> None:
    user = await run_sync(UserFactory)
    token_id = (await run_sync(bearer_for, user)).split("|")[0]
    socket = await open_socket()
    await socket.send({"type": "auth", "token": f"{token_id}|wrong"})
    assert await socket.recv_close(timeout=2) == 4401


@pytest.mark.parametrize(
    "since",
    [
        "abc:²",
        "abc:\u0663",
        "abc:1\n",
        "abc:99999999999999999999999",
        "abc:-1",
        ":1",
        "ab c:1",
        "ab\u00e9:1",
        "x" * 40 + ":1",
        "abc:1:2",
        "abc",
    ],
)
async def test_since_that_is_not_an_offset_answers_bad_request(open_socket, since) -> None:
    user, socket = await authed(open_socket)
    answer = await socket.subscribe(f"user.{user.pk}", since=since)
    assert answer["type"] == "error" and answer["code"] == "bad_request", answer
    assert answer["id"] == "c1"
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}


async def test_binary_frame_is_handled(open_socket) -> None:
    _, socket = await authed(open_socket)
    await socket.comm.send_to(bytes_data=b"\x00\xff\xfe")
    assert (await socket.recv())["code"] == "bad_request"


async def test_first_frame_must_be_auth(open_socket) -> None:
    socket = await open_socket()
    await socket.send({"type": "ping"})
    assert await socket.recv_close() == 4401


async def test_garbage_first_frame_closes_4401(open_socket) -> None:
    socket = await open_socket()
    await socket.send_raw("{{{{")
    assert await socket.recv_close() == 4401


@override_settings(WS_AUTH_TIMEOUT=0.2)
async def test_no_auth_within_timeout_closes_4408(open_socket) -> None:
    socket = await open_socket()
    assert await socket.recv_close(timeout=2) == 4408


@override_settings(WS_RATE_BURST=10, WS_RATE_PER_SECOND=1)
async def test_flood_closes_4429(open_socket) -> None:
    _, socket = await authed(open_socket)
    for _ in range(30):
        await socket.send({"type": "ping"})
    pongs = 0
    while True:
        message = await socket.comm.receive_output(3)
        if message["type"] == "websocket.close":
            assert message["code"] == 4429
            break
        assert json.loads(message["text"]) == {"type": "pong"}
        pongs += 1
    assert pongs < 30


@override_settings(WS_MAX_SUBSCRIPTIONS=2)
async def test_subscription_cap(open_socket) -> None:
    user, socket = await authed(open_socket)
    rooms = [await run_sync(RoomFactory, members=[user]) for _ in range(3)]
    assert (await socket.subscribe(f"room.{rooms[0].pk}"))["type"] == "subscribed"
    assert (await socket.subscribe(f"room.{rooms[1].pk}"))["type"] == "subscribed"
    over = await socket.subscribe(f"room.{rooms[2].pk}")
    assert over["type"] == "error" and over["code"] == "bad_request"
    # Re-subscribing to a topic one holds is not a new subscription.
    assert (await socket.subscribe(f"room.{rooms[0].pk}"))["type"] == "subscribed"


async def test_unsubscribe_stops_events(open_socket) -> None:
    from backend.accounts.services import user_update

    user, socket = await authed(open_socket)
    await socket.subscribe(f"user.{user.pk}")
    await socket.send({"type": "unsubscribe", "topic": f"user.{user.pk}", "id": 9})
    assert await socket.recv() == {"type": "unsubscribed", "topic": f"user.{user.pk}", "id": 9}
    await run_sync(user_update, actor=user, user_id=user.pk, changes={"name": "Quiet"})
    assert await socket.nothing(0.5)
