"""/rooms: members only; who adds and removes members; the member list with presence."""

from __future__ import annotations

import json

import pytest

from backend.accounts.models import User
from backend.messaging.models import Room, RoomMembership
from realtime.models import OutboxEvent
from tests.api.conftest import check_problem
from tests.conftest import ApiClient
from tests.factories import RoomFactory, UserFactory, bearer_for

pytestmark = pytest.mark.django_db

ROOM_KEYS = {"id", "name", "member_ids", "created_by_id", "created_at"}


def client(user: User) -> ApiClient:
    return ApiClient(bearer_for(user))


def members(room: Room) -> list[int]:
    return sorted(RoomMembership.objects.filter(room=room).values_list("user_id", flat=True))


def test_create_makes_the_creator_a_member(as_customer: ApiClient, customer: User) -> None:
    bob = UserFactory()
    answer = as_customer.post("/rooms", {"name": " general ", "member_ids": [bob.pk, bob.pk]})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert set(body) == ROOM_KEYS
    assert body["name"] == "general"
    assert body["member_ids"] == sorted([customer.pk, bob.pk])
    assert body["created_by_id"] == customer.pk
    assert as_customer.get(f"/rooms/{body['id']}").json() == body
    # Bob learns of the room he was put in.
    event = OutboxEvent.objects.get(topic=f"user.{bob.pk}", event="room.updated")
    assert json.loads(event.payload) == body


@pytest.mark.parametrize(
    "payload",
    [{}, {"name": ""}, {"name": "x" * 151}, {"name": "ok", "member_ids": [0]}, {"name": None}],
)
def test_create_rejects_bad_input(as_customer: ApiClient, payload: dict) -> None:
    check_problem(as_customer.post("/rooms", payload), 422)
    assert not Room.objects.exists()


def test_create_with_unknown_or_inactive_member_is_422(as_customer: ApiClient) -> None:
    inactive = UserFactory(is_active=False)
    for member_ids in ([999_999], [inactive.pk]):
        body = check_problem(
            as_customer.post("/rooms", {"name": "r", "member_ids": member_ids}), 422
        )
        assert body["errors"][0]["loc"] == ["body", "member_ids"]
    assert not Room.objects.exists()


def test_list_shows_only_rooms_one_is_in(as_customer: ApiClient, customer: User) -> None:
    mine = RoomFactory(members=[customer])
    RoomFactory(members=[UserFactory()])
    body = as_customer.get("/rooms").json()
    assert body["count"] == 1
    assert [room["id"] for room in body["items"]] == [mine.pk]


@pytest.mark.parametrize("role", ["Customer", "Editor", "Admin"])
def test_non_members_see_nothing_whatever_their_role(role: str) -> None:
    room = RoomFactory(members=[UserFactory()])
    outsider = client(UserFactory(roles=[role]))
    for path in (f"/rooms/{room.pk}", f"/rooms/{room.pk}/members", f"/rooms/{room.pk}/messages"):
        check_problem(outsider.get(path), 404)
    check_problem(
        outsider.post(f"/rooms/{room.pk}/members", {"user_id": outsider_id(outsider)}), 404
    )
    check_problem(outsider.delete(f"/rooms/{room.pk}/members/{members(room)[0]}"), 404)
    assert outsider.get("/rooms").json()["count"] == 0
    assert len(members(room)) == 1


def outsider_id(api: ApiClient) -> int:
    return int(api.get("/auth/me").json()["id"])


def test_anonymous_gets_401(anon: ApiClient) -> None:
    room = RoomFactory(members=[UserFactory()])
    attempts = [
        ("GET", "/rooms", None),
        ("POST", "/rooms", {"name": "x"}),
        ("GET", f"/rooms/{room.pk}", None),
        ("GET", f"/rooms/{room.pk}/members", None),
        ("POST", f"/rooms/{room.pk}/members", {"user_id": 1}),
        ("DELETE", f"/rooms/{room.pk}/members/1", None),
        ("GET", f"/rooms/{room.pk}/messages", None),
    ]
    for method, path, payload in attempts:
        check_problem(anon.request(method, path, payload), 401)


def test_without_chat_use_everything_is_403() -> None:
    user = UserFactory(roles=[])
    room = RoomFactory(members=[user])
    api = client(user)
    attempts = [
        ("GET", "/rooms", None),
        ("POST", "/rooms", {"name": "x"}),
        ("GET", f"/rooms/{room.pk}", None),
        ("GET", f"/rooms/{room.pk}/members", None),
        ("POST", f"/rooms/{room.pk}/members", {"user_id": UserFactory().pk}),
        ("DELETE", f"/rooms/{room.pk}/members/{user.pk}", None),
        ("GET", f"/rooms/{room.pk}/messages", None),
    ]
    for method, path, payload in attempts:
        check_problem(api.request(method, path, payload), 403)
    assert members(room) == [user.pk]


def test_any_member_adds_members(customer: User) -> None:
    creator, member, newcomer = UserFactory(), UserFactory(), UserFactory()
    room = RoomFactory(created_by=creator, members=[creator, member])
    answer = client(member).post(f"/rooms/{room.pk}/members", {"user_id": newcomer.pk})
    assert answer.status_code == 200, answer.content
    assert answer.json()["member_ids"] == sorted([creator.pk, member.pk, newcomer.pk])
    # Adding again changes nothing and publishes nothing more.
    before = OutboxEvent.objects.count()
    assert (
        client(member).post(f"/rooms/{room.pk}/members", {"user_id": newcomer.pk}).status_code
        == 200
    )
    assert OutboxEvent.objects.count() == before
    check_problem(client(member).post(f"/rooms/{room.pk}/members", {"user_id": 999_999}), 422)


def test_creator_removes_others_members_only_themselves() -> None:
    creator, alice, bob = UserFactory(), UserFactory(), UserFactory()
    room = RoomFactory(created_by=creator, members=[creator, alice, bob])
    check_problem(client(alice).delete(f"/rooms/{room.pk}/members/{bob.pk}"), 403)
    check_problem(client(alice).delete(f"/rooms/{room.pk}/members/{creator.pk}"), 403)
    assert client(alice).delete(f"/rooms/{room.pk}/members/{alice.pk}").status_code == 204
    check_problem(client(alice).get(f"/rooms/{room.pk}"), 404)  # gone with her membership
    assert client(creator).delete(f"/rooms/{room.pk}/members/{bob.pk}").status_code == 204
    check_problem(client(creator).delete(f"/rooms/{room.pk}/members/{bob.pk}"), 404)
    check_problem(client(creator).delete(f"/rooms/{room.pk}/members/{creator.pk}"), 409)
    assert members(room) == [creator.pk]
    removed = OutboxEvent.objects.filter(topic=f"user.{bob.pk}", event="room.updated")
    assert json.loads(removed.get().payload)["member_ids"] == [creator.pk]


def test_member_list_shows_who_is_online(customer: User, as_customer: ApiClient) -> None:
    from realtime.history import get_history

    bob = UserFactory(name="Bob")
    room = RoomFactory(members=[customer, bob])
    get_history().presence_join(f"room.{room.pk}", bob.pk, "conn-1")
    try:
        body = as_customer.get(f"/rooms/{room.pk}/members").json()
    finally:
        get_history().presence_leave(f"room.{room.pk}", bob.pk, "conn-1")
    assert body == [
        {"user_id": customer.pk, "name": customer.name, "online": False},
        {"user_id": bob.pk, "name": "Bob", "online": True},
    ]


HUGE = "99999999999999999999999"


def test_out_of_range_ids_are_404_not_500(customer: User, as_customer: ApiClient) -> None:
    room = RoomFactory(created_by=customer, members=[customer])
    for method, path in (
        ("GET", f"/rooms/{HUGE}"),
        ("GET", f"/rooms/{HUGE}/members"),
        ("GET", f"/rooms/{HUGE}/messages"),
        ("DELETE", f"/rooms/{HUGE}/members/1"),
        ("DELETE", f"/rooms/{room.pk}/members/{HUGE}"),
        ("GET", f"/mails/{HUGE}"),
        ("DELETE", f"/mails/{HUGE}"),
        ("PATCH", f"/tasks/{HUGE}"),
    ):
        answer = as_customer.request(method, path, {"title": "x"} if method == "PATCH" else None)
        check_problem(answer, 404)
    check_problem(as_customer.post(f"/rooms/{HUGE}/members", {"user_id": 1}), 404)
