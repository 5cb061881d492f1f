import asyncio

import pytest

from backend.accounts.tokens import token_revoke, tokens_revoke_for_user
from tests.factories import RoomFactory, UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def member_sockets(open_socket, count=2):
    users = [await run_sync(UserFactory) for _ in range(count)]
    room = await run_sync(RoomFactory, members=users)
    sockets = [await open_socket(await run_sync(bearer_for, user)) for user in users]
    return room, users, sockets


async def next_event(socket, name):
    while True:
        frame = await socket.recv()
        if frame["type"] == "event" and frame["event"] == name:
            return frame


async def test_presence_joined_and_left(open_socket) -> None:
    room, (alice, bob), (a, b) = await member_sockets(open_socket)
    topic = f"room.{room.pk}"
    await a.subscribe(topic)
    await next_event(a, "presence.joined")  # her own arrival
    answer = await b.subscribe(topic)
    assert answer["presence"] == sorted([alice.pk, bob.pk])
    joined = await next_event(a, "presence.joined")
    assert joined["data"] == {"room_id": room.pk, "user_id": bob.pk}
    assert joined["offset"]
    await b.close()
    left = await next_event(a, "presence.left")
    assert left["data"] == {"room_id": room.pk, "user_id": bob.pk}


async def test_second_connection_of_a_user_is_not_a_new_arrival(open_socket) -> None:
    room, (_alice, bob), (a, b) = await member_sockets(open_socket)
    topic = f"room.{room.pk}"
    await a.subscribe(topic)
    await b.subscribe(topic)
    await next_event(a, "presence.joined")
    await next_event(a, "presence.joined")
    b2 = await open_socket(await run_sync(bearer_for, bob))
    await b2.subscribe(topic)
    await b2.close()
    assert await a.nothing(0.5)  # neither joined nor left: bob is still online on b


async def test_typing_reaches_other_members_not_the_sender_and_is_not_stored(open_socket) -> None:
    from realtime.history import get_history

    room, (alice, _bob), (a, b) = await member_sockets(open_socket)
    topic = f"room.{room.pk}"
    await a.subscribe(topic)
    await next_event(a, "presence.joined")  # her own arrival
    await b.subscribe(topic)
    await next_event(a, "presence.joined")  # bob's
    await next_event(b, "presence.joined")  # his own
    before = await asyncio.to_thread(get_history().latest, topic)
    await a.send({"type": "typing", "room_id": room.pk})
    typing = await b.recv()
    assert typing == {
        "type": "event",
        "topic": topic,
        "event": "typing",
        "offset": None,
        "data": {"room_id": room.pk, "user_id": alice.pk},
    }
    assert await a.nothing(0.3)
    assert await asyncio.to_thread(get_history().latest, topic) == before


async def test_typing_into_a_room_one_is_not_in_is_refused(open_socket) -> None:
    room, _, (a, _b) = await member_sockets(open_socket)
    outsider = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, outsider))
    await socket.send({"type": "typing", "room_id": room.pk})
    assert (await socket.recv())["code"] == "not_found"
    assert await a.nothing(0.3)


async def test_revoked_token_closes_its_sockets_only(open_socket) -> None:
    user = await run_sync(UserFactory)
    doomed_token = await run_sync(bearer_for, user)
    other_token = await run_sync(bearer_for, user)
    doomed = await open_socket(doomed_token)
    kept = await open_socket(other_token)
    from backend.accounts.models import PersonalAccessToken

    token = await run_sync(PersonalAccessToken.objects.get, pk=int(doomed_token.split("|")[0]))
    await run_sync(token_revoke, token=token)
    assert await doomed.recv_close(timeout=1) == 4401
    await kept.send({"type": "ping"})
    assert await kept.recv() == {"type": "pong"}


async def test_password_reset_style_revocation_closes_every_socket_of_the_user(open_socket) -> None:
    user = await run_sync(UserFactory)
    sockets = [await open_socket(await run_sync(bearer_for, user)) for _ in range(3)]
    await run_sync(tokens_revoke_for_user, user=user)
    for socket in sockets:
        assert await socket.recv_close(timeout=1) == 4401


async def test_expired_token_socket_closes_when_it_expires(open_socket) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from backend.accounts.models import PersonalAccessToken

    user = await run_sync(UserFactory)
    plain = await run_sync(bearer_for, user)
    await run_sync(
        PersonalAccessToken.objects.filter(pk=int(plain.split("|")[0])).update,
        expires_at=timezone.now() + timedelta(seconds=0.5),
    )
    socket = await open_socket(plain)
    assert await socket.recv_close(timeout=2) == 4401


async def test_hub_token_check_closes_sockets_whose_revocation_was_missed(open_socket) -> None:
    """The revocation broadcast is lost (no on_commit hook ran): the hub's periodic check
    still closes the socket."""
    from django.utils import timezone

    from backend.accounts.models import PersonalAccessToken
    from realtime.hub import get_hub

    user = await run_sync(UserFactory)
    doomed_token = await run_sync(bearer_for, user)
    kept_token = await run_sync(bearer_for, user)
    doomed = await open_socket(doomed_token)
    kept = await open_socket(kept_token)
    await run_sync(
        PersonalAccessToken.objects.filter(pk=int(doomed_token.split("|")[0])).update,
        revoked_at=timezone.now(),
    )
    await (await get_hub()).recheck_tokens()
    assert await doomed.recv_close(timeout=1) == 4401
    await kept.send({"type": "ping"})
    assert await kept.recv() == {"type": "pong"}
