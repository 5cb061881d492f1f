import pytest

from tests.factories import UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def make_user_and_token(**kwargs):
    user = await run_sync(UserFactory, **kwargs)
    token = await run_sync(bearer_for, user)
    return user, token


async def test_auth_ok_then_ping_pong(open_socket) -> None:
    user, token = await make_user_and_token()
    socket = await open_socket()
    assert await socket.auth(token) == {"type": "auth.ok", "user_id": user.pk}
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}


async def test_bad_token_closes_4401(open_socket) -> None:
    socket = await open_socket()
    await socket.send({"type": "auth", "token": "1|nope"})
    assert await socket.recv_close() == 4401


async def test_subscribe_own_user_topic_and_receive_user_updated(open_socket) -> None:
    from backend.accounts.services import user_update

    user, token = await make_user_and_token()
    socket = await open_socket(token)
    answer = await socket.subscribe(f"user.{user.pk}")
    assert answer["type"] == "subscribed" and answer["recovered"] is True and answer["id"] == "c1"
    await run_sync(user_update, actor=user, user_id=user.pk, changes={"name": "Renamed"})
    event = await socket.recv()
    assert event["type"] == "event"
    assert event["event"] == "user.updated"
    assert event["topic"] == f"user.{user.pk}"
    assert event["data"]["name"] == "Renamed"
    assert event["data"]["roles"] == ["Customer"]
    assert "permissions" in event["data"]


async def test_other_users_topic_is_not_found(open_socket) -> None:
    _, token = await make_user_and_token()
    other, _ = await make_user_and_token()
    socket = await open_socket(token)
    answer = await socket.subscribe(f"user.{other.pk}", id="x")
    assert answer == {
        "type": "error",
        "code": "not_found",
        "message": f"no topic user.{other.pk}",
        "id": "x",
    }


async def test_replay_since_offset(open_socket) -> None:
    from backend.accounts.services import user_update

    user, token = await make_user_and_token()
    socket = await open_socket(token)
    first = await socket.subscribe(f"user.{user.pk}")
    for n in range(3):
        await run_sync(user_update, actor=user, user_id=user.pk, changes={"name": f"N{n}"})
    await socket.close()
    again = await open_socket(token)
    answer = await again.subscribe(f"user.{user.pk}", since=first["offset"])
    assert answer["recovered"] is True
    names = [(await again.recv())["data"]["name"] for _ in range(3)]
    assert names == ["N0", "N1", "N2"]
    assert await again.nothing()
