"""/rooms and /messages under the refusal matrix: the owner is a member of the room under
test, the others are not (whatever their role)."""

from __future__ import annotations

import pytest

from backend.accounts.models import User
from backend.messaging.models import Message, RoomMembership
from realtime.models import OutboxEvent
from tests.factories import MessageFactory, RoomFactory, UserFactory
from tests.permission_matrix import (
    ACTORS,
    ANONYMOUS,
    OTHER,
    OWNER,
    STAFF,
    Endpoint,
    World,
    check,
    matrix,
)

pytestmark = pytest.mark.django_db


def _state() -> tuple:
    memberships = tuple(RoomMembership.objects.order_by("pk").values_list("room_id", "user_id"))
    messages = tuple(Message.objects.order_by("pk").values_list("pk", "body"))
    return memberships, messages, OutboxEvent.objects.count()


@pytest.fixture
def world() -> World:
    owner = UserFactory(roles=["Customer"])
    peer = UserFactory(roles=["Customer"], email="peer@example.com")
    room = RoomFactory(created_by=owner, members=[owner, peer])
    MessageFactory(room=room, sender=peer)
    return World(
        owner=owner,
        other=UserFactory(roles=["Customer"]),
        staff=UserFactory(roles=["Admin"]),
        object_id=room.pk,
        state=_state,
    )


MEMBERS_ONLY = {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 404}
CHAT_ENDPOINTS = [
    Endpoint("GET", "/rooms", {ANONYMOUS: 401, OWNER: 200, OTHER: 200, STAFF: 200}),
    Endpoint("POST", "/rooms", {ANONYMOUS: 401, OWNER: 201, OTHER: 201, STAFF: 201}, {"name": "r"}),
    Endpoint("GET", "/rooms/{id}", MEMBERS_ONLY),
    Endpoint("GET", "/rooms/{id}/members", MEMBERS_ONLY),
    Endpoint("GET", "/rooms/{id}/messages", MEMBERS_ONLY),
    Endpoint(
        "POST",
        "/messages",
        {ANONYMOUS: 401, OWNER: 201, OTHER: 403, STAFF: 403},
        {"room_id": "{id}", "body": "hello"},
        label="POST /messages to the room",
    ),
]


@pytest.mark.parametrize(("endpoint", "actor"), matrix(CHAT_ENDPOINTS))
def test_chat_matrix(world: World, endpoint: Endpoint, actor: str) -> None:
    response = check(world, endpoint, actor)
    if endpoint.path == "/rooms" and endpoint.method == "GET" and actor != ANONYMOUS:
        ids = [room["id"] for room in response.json()["items"]]
        assert ids == ([world.object_id] if actor == OWNER else [])


@pytest.mark.parametrize("actor", ACTORS)
def test_member_changes_matrix(world: World, actor: str) -> None:
    """Adding: any member; removing another member: the creator (here the owner) only.
    (A member who is not the creator: see test_rooms.)"""
    peer = User.objects.get(email="peer@example.com")
    newcomer = UserFactory()
    add = Endpoint("POST", "/rooms/{id}/members", MEMBERS_ONLY, {"user_id": newcomer.pk})
    check(world, add, actor)
    remove = Endpoint("DELETE", f"/rooms/{{id}}/members/{peer.pk}", {**MEMBERS_ONLY, OWNER: 204})
    check(world, remove, actor)
