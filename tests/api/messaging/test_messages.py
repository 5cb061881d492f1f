"""/messages and /rooms/{id}/messages: who may post and read, cursor pages, idempotent sends."""

from __future__ import annotations

import json

import pytest

from backend.accounts.models import User
from backend.messaging.models import Message
from realtime.models import OutboxEvent
from tests.api.conftest import check_problem
from tests.conftest import ApiClient
from tests.factories import MessageFactory, RoomFactory, UserFactory, bearer_for

pytestmark = pytest.mark.django_db

MESSAGE_KEYS = {"id", "sender_id", "room_id", "recipient_id", "body", "created_at"}


def client(user: User) -> ApiClient:
    return ApiClient(bearer_for(user))


def events(topic: str) -> list[tuple[str, dict]]:
    rows = OutboxEvent.objects.filter(topic=topic, event="message.created").order_by("id")
    return [(row.event, json.loads(row.payload)) for row in rows]


# --- sending --------------------------------------------------------------------------------
def test_room_message_is_stored_and_published_to_the_room(customer: User) -> None:
    room = RoomFactory(members=[customer, UserFactory()])
    answer = client(customer).post("/messages", {"room_id": room.pk, "body": "hi all"})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert set(body) == MESSAGE_KEYS
    assert (body["sender_id"], body["room_id"], body["recipient_id"], body["body"]) == (
        customer.pk,
        room.pk,
        None,
        "hi all",
    )
    assert events(f"room.{room.pk}") == [("message.created", body)]
    listed = client(customer).get(f"/rooms/{room.pk}/messages").json()
    assert listed == {"items": [body], "next_before": None}


def test_direct_message_goes_to_both_parties(customer: User) -> None:
    bob = UserFactory()
    body = client(customer).post("/messages", {"recipient_id": bob.pk, "body": "psst"}).json()
    assert (body["room_id"], body["recipient_id"]) == (None, bob.pk)
    assert events(f"user.{customer.pk}") == [("message.created", body)]
    assert events(f"user.{bob.pk}") == [("message.created", body)]
    mine = client(customer).get(f"/messages?with={bob.pk}").json()
    theirs = client(bob).get(f"/messages?with={customer.pk}").json()
    assert mine == theirs == {"items": [body], "next_before": None}


def test_a_retried_send_stores_once_and_answers_the_same(customer: User) -> None:
    room = RoomFactory(members=[customer])
    payload = {"room_id": room.pk, "body": "once", "client_msg_id": "3f1c-a9"}
    first = client(customer).post("/messages", payload)
    second = client(customer).post("/messages", payload)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Message.objects.count() == 1
    assert len(events(f"room.{room.pk}")) == 1
    # The key is the sender's own: another sender may use the same one.
    other = UserFactory()
    room.memberships.create(user=other)
    assert client(other).post("/messages", payload).json()["id"] != first.json()["id"]


def test_send_without_key_is_not_deduplicated(customer: User) -> None:
    room = RoomFactory(members=[customer])
    for _ in range(2):
        client(customer).post("/messages", {"room_id": room.pk, "body": "again"})
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"body": "no target"},
        {"room_id": 1, "recipient_id": 2, "body": "both"},
        {"room_id": "x", "body": "bad"},
        {"room_id": 0, "body": "bad"},
        {"recipient_id": 1},
        {"room_id": 1, "body": ""},
        {"room_id": 1, "body": "   "},
        {"room_id": 1, "body": "x" * 4001},
        {"room_id": 1, "body": "ok", "client_msg_id": ""},
        {"room_id": 1, "body": "ok", "client_msg_id": "x" * 65},
        {"room_id": 1, "body": "ok", "client_msg_id": "has space"},
        {"room_id": 1, "body": "\ud800"},
    ],
)
def test_send_rejects_bad_input(as_customer: ApiClient, payload: dict) -> None:
    check_problem(as_customer.post("/messages", payload), 422)
    assert not Message.objects.exists()


def test_direct_message_to_self_unknown_or_inactive_is_422(customer: User) -> None:
    inactive = UserFactory(is_active=False)
    for recipient in (customer.pk, 999_999, inactive.pk):
        answer = client(customer).post("/messages", {"recipient_id": recipient, "body": "x"})
        assert check_problem(answer, 422)["errors"][0]["loc"] == ["body", "recipient_id"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("role", ["Customer", "Editor", "Admin"])
def test_only_members_post_to_a_room(role: str) -> None:
    room = RoomFactory(members=[UserFactory()])
    outsider = client(UserFactory(roles=[role]))
    check_problem(outsider.post("/messages", {"room_id": room.pk, "body": "let me in"}), 403)
    # A missing room answers the same: nothing tells the two apart.
    check_problem(outsider.post("/messages", {"room_id": 999_999, "body": "x"}), 403)
    assert not Message.objects.exists()


def test_anonymous_and_users_without_chat_use_are_refused(anon: ApiClient) -> None:
    user = UserFactory(roles=[])
    room = RoomFactory(members=[user])
    other = UserFactory()
    for api, status in ((anon, 401), (client(user), 403)):
        check_problem(api.post("/messages", {"room_id": room.pk, "body": "x"}), status)
        check_problem(api.post("/messages", {"recipient_id": other.pk, "body": "x"}), status)
        check_problem(api.get(f"/messages?with={other.pk}"), status)
    assert not Message.objects.exists()


# --- reading --------------------------------------------------------------------------------
def test_room_history_pages_backwards_by_cursor(customer: User) -> None:
    room = RoomFactory(members=[customer])
    ids = [MessageFactory(room=room, sender=customer).pk for _ in range(5)]
    MessageFactory()  # another room's
    api = client(customer)
    first = api.get(f"/rooms/{room.pk}/messages?limit=2").json()
    assert [m["id"] for m in first["items"]] == [ids[4], ids[3]]
    assert first["next_before"] == ids[3]
    second = api.get(f"/rooms/{room.pk}/messages?limit=2&before={ids[3]}").json()
    assert [m["id"] for m in second["items"]] == [ids[2], ids[1]]
    last = api.get(f"/rooms/{room.pk}/messages?limit=2&before={second['next_before']}").json()
    assert [m["id"] for m in last["items"]] == [ids[0]]
    assert last["next_before"] is None
    exact = api.get(f"/rooms/{room.pk}/messages?limit=5").json()
    assert exact["next_before"] is None  # no older message: no cursor
    for query in ("limit=0", "limit=101", "before=0", "before=x", "before=99999999999999999999"):
        check_problem(api.get(f"/rooms/{room.pk}/messages?{query}"), 422)


def test_direct_conversation_shows_only_those_two(customer: User) -> None:
    bob, carol = UserFactory(), UserFactory()
    to_bob = MessageFactory(sender=customer, room=None, recipient=bob)
    from_bob = MessageFactory(sender=bob, room=None, recipient=customer)
    MessageFactory(sender=customer, room=None, recipient=carol)
    bob_to_carol = MessageFactory(sender=bob, room=None, recipient=carol)
    page = client(customer).get(f"/messages?with={bob.pk}").json()
    assert [m["id"] for m in page["items"]] == [from_bob.pk, to_bob.pk]
    # Carol reads her own conversation with Bob, never Bob's with someone else.
    carol_page = client(carol).get(f"/messages?with={bob.pk}").json()
    assert [m["id"] for m in carol_page["items"]] == [bob_to_carol.pk]
    admin = client(UserFactory(roles=["Admin"]))
    assert admin.get(f"/messages?with={bob.pk}").json() == {"items": [], "next_before": None}
    check_problem(client(customer).get("/messages"), 422)
    check_problem(client(customer).get("/messages?with=abc"), 422)


def test_a_former_member_no_longer_reads_the_room(customer: User) -> None:
    creator = UserFactory()
    room = RoomFactory(created_by=creator, members=[creator, customer])
    MessageFactory(room=room, sender=creator)
    assert client(creator).delete(f"/rooms/{room.pk}/members/{customer.pk}").status_code == 204
    check_problem(client(customer).get(f"/rooms/{room.pk}/messages"), 404)
    check_problem(client(customer).post("/messages", {"room_id": room.pk, "body": "x"}), 403)
