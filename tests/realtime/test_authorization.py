"""Who may subscribe to what: every rule tried from the wrong side too."""

import pytest

from tests.factories import RoomFactory, UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def user_with_token(roles=("Customer",)):
    user = await run_sync(UserFactory, roles=list(roles))
    return user, await run_sync(bearer_for, user)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [(["Customer"], "forbidden"), (["Editor"], "forbidden"), (["Admin"], "subscribed")],
)
async def test_dashboard_needs_orders_view_any(open_socket, roles, expected) -> None:
    _, token = await user_with_token(roles)
    socket = await open_socket(token)
    answer = await socket.subscribe("dashboard")
    assert answer.get("code", answer["type"]) == expected


async def test_superuser_may_subscribe_to_dashboard(open_socket) -> None:
    from backend.accounts.models import User

    user = await run_sync(User.objects.create_superuser, email="root@example.com", password="x")
    socket = await open_socket(await run_sync(bearer_for, user))
    assert (await socket.subscribe("dashboard"))["type"] == "subscribed"


async def test_role_change_takes_effect_on_next_subscribe(open_socket) -> None:
    from django.contrib.auth.models import Group

    user, token = await user_with_token()
    socket = await open_socket(token)
    assert (await socket.subscribe("dashboard"))["code"] == "forbidden"
    admin = await run_sync(Group.objects.get, name="Admin")
    await run_sync(user.groups.add, admin)
    assert (await socket.subscribe("dashboard"))["type"] == "subscribed"


async def test_room_members_only_and_missing_room_looks_the_same(open_socket) -> None:
    member, member_token = await user_with_token()
    _outsider, outsider_token = await user_with_token()
    room = await run_sync(RoomFactory, members=[member])
    inside = await open_socket(member_token)
    answer = await inside.subscribe(f"room.{room.pk}")
    assert answer["type"] == "subscribed"
    assert answer["presence"] == [member.pk]
    outside = await open_socket(outsider_token)
    refused = await outside.subscribe(f"room.{room.pk}", id="r")
    missing = await outside.subscribe(f"room.{room.pk + 1000}", id="r")
    assert refused["code"] == missing["code"] == "not_found"
    assert refused["message"].replace(str(room.pk), "#") == missing["message"].replace(
        str(room.pk + 1000), "#"
    )


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "user",
        "user.",
        "user.0",
        "user.-1",
        "user.abc",
        "room",
        "dashboard.3",
        "USER.1",
        5,
        None,
        "a" * 300,
    ],
)
async def test_malformed_topics_are_bad_requests(open_socket, topic) -> None:
    _, token = await user_with_token()
    socket = await open_socket(token)
    answer = await socket.subscribe(topic, id="m")
    assert answer["type"] == "error"
    assert answer["code"] == "bad_request"
    assert answer["id"] == "m"


async def test_unknown_topic_kind_is_not_found(open_socket) -> None:
    _, token = await user_with_token()
    socket = await open_socket(token)
    assert (await socket.subscribe("secrets.1"))["code"] == "not_found"


async def test_inactive_users_token_is_refused(open_socket) -> None:
    user, token = await user_with_token()
    user.is_active = False
    await run_sync(user.save)
    socket = await open_socket()
    await socket.send({"type": "auth", "token": token})
    assert await socket.recv_close() == 4401


async def test_losing_a_right_ends_the_live_subscription(open_socket) -> None:
    from django.contrib.auth.models import Group
    from django.db import transaction

    from realtime.publish import reauthorize_user

    user, token = await user_with_token(["Admin"])
    socket = await open_socket(token)
    assert (await socket.subscribe("dashboard"))["type"] == "subscribed"
    assert (await socket.subscribe(f"user.{user.pk}"))["type"] == "subscribed"

    def demote() -> None:
        with transaction.atomic():
            user.groups.set([Group.objects.get(name="Customer")])
            reauthorize_user(user.pk)

    await run_sync(demote)
    assert await socket.recv() == {
        "type": "unsubscribed",
        "topic": "dashboard",
        "reason": "forbidden",
    }
    assert await socket.nothing(0.3)  # the own user topic stays
