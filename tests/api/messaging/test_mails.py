"""/mails: copies per mailbox, folders, unread counts, sanitized bodies, events, refusals."""

from __future__ import annotations

import json

import pytest

from backend.accounts.models import User
from backend.messaging.models import Mail
from realtime.models import OutboxEvent
from tests.api.conftest import check_problem
from tests.conftest import ApiClient
from tests.factories import MailFactory, UserFactory, bearer_for

pytestmark = pytest.mark.django_db

MAIL_KEYS = {
    "id",
    "user_id",
    "folder",
    "subject",
    "body",
    "read_flag",
    "sender_id",
    "recipient_ids",
    "created_at",
}
NO_UNREAD = {"inbox": 0, "sent": 0, "drafts": 0, "archive": 0, "trash": 0}


def client(user: User) -> ApiClient:
    return ApiClient(bearer_for(user))


def mail_events(user: User) -> list[tuple[str, dict]]:
    rows = OutboxEvent.objects.filter(topic=f"user.{user.pk}", event__startswith="mail.")
    return [(row.event, json.loads(row.payload)) for row in rows.order_by("id")]


# --- sending --------------------------------------------------------------------------------
def test_send_files_one_copy_per_mailbox(customer: User) -> None:
    bob, carol = UserFactory(), UserFactory()
    answer = client(customer).post(
        "/mails", {"to": [bob.pk, carol.pk, bob.pk], "subject": " Hello ", "body": "<p>Hi</p>"}
    )
    assert answer.status_code == 201, answer.content
    sent = answer.json()
    assert set(sent) == MAIL_KEYS
    assert (sent["user_id"], sent["folder"], sent["read_flag"]) == (customer.pk, "sent", True)
    assert (sent["subject"], sent["body"]) == ("Hello", "<p>Hi</p>")
    assert sent["recipient_ids"] == [bob.pk, carol.pk]
    assert sent["sender_id"] == customer.pk
    for recipient in (bob, carol):
        inbox = client(recipient).get("/mails?folder=inbox").json()
        assert inbox["count"] == 1
        copy = inbox["items"][0]
        assert copy["user_id"] == recipient.pk
        assert (copy["folder"], copy["read_flag"]) == ("inbox", False)
        assert {k: copy[k] for k in ("subject", "body", "sender_id", "recipient_ids")} == {
            k: sent[k] for k in ("subject", "body", "sender_id", "recipient_ids")
        }
        assert client(recipient).get("/mails/counts").json() == {**NO_UNREAD, "inbox": 1}
        assert mail_events(recipient) == [
            ("mail.received", {"mail": copy, "counts": {**NO_UNREAD, "inbox": 1}})
        ]
    assert mail_events(customer) == [("mail.sent", {"mail": sent, "counts": NO_UNREAD})]
    assert Mail.objects.count() == 3


def test_bodies_are_sanitized(customer: User) -> None:
    bob = UserFactory()
    dirty = (
        '<p onclick="steal()">Hi <b>there</b></p><script>alert(1)</script>'
        '<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>'
    )
    sent = client(customer).post("/mails", {"to": [bob.pk], "subject": "s", "body": dirty}).json()
    for body in (sent["body"], Mail.objects.get(user=bob).body):
        assert "<b>there</b>" in body
        for forbidden in ("<script", "onclick", "onerror", "javascript:"):
            assert forbidden not in body.lower()


@pytest.mark.parametrize(
    "payload",
    [
        {"subject": "s", "body": "b"},
        {"to": [], "subject": "s", "body": "b"},
        {"to": [0], "subject": "s", "body": "b"},
        {"to": "1", "subject": "s", "body": "b"},
        {"to": [1], "subject": "", "body": "b"},
        {"to": [1], "subject": "x" * 201, "body": "b"},
        {"to": [1], "subject": "s"},
        {"to": [1], "subject": "s", "body": None},
        {"to": [1], "subject": "\ud800", "body": "b"},
    ],
)
def test_send_rejects_bad_input(as_customer: ApiClient, payload: dict) -> None:
    check_problem(as_customer.post("/mails", payload), 422)
    assert not Mail.objects.exists()


def test_send_to_unknown_or_inactive_user_is_422(customer: User) -> None:
    inactive = UserFactory(is_active=False)
    for to in ([999_999], [UserFactory().pk, inactive.pk]):
        body = check_problem(
            client(customer).post("/mails", {"to": to, "subject": "s", "body": "b"}), 422
        )
        assert body["errors"][0]["loc"] == ["body", "to"]
    assert not Mail.objects.exists()


# --- reading --------------------------------------------------------------------------------
def test_list_filters_by_folder_and_subject(customer: User) -> None:
    a = MailFactory(user=customer, subject="Invoice March")
    b = MailFactory(user=customer, subject="lunch?", folder="archive", home_folder="inbox")
    c = MailFactory(user=customer, subject="Re: invoice")
    MailFactory(subject="invoice for someone else")
    api = client(customer)

    def ids(query: str) -> list[int]:
        answer = api.get(f"/mails?{query}")
        assert answer.status_code == 200, answer.content
        return [m["id"] for m in answer.json()["items"]]

    assert ids("") == [c.pk, b.pk, a.pk]
    assert ids("folder=inbox") == [c.pk, a.pk]
    assert ids("folder=archive") == [b.pk]
    assert ids("search=INVOICE") == [c.pk, a.pk]
    assert ids("folder=archive&search=invoice") == []
    assert ids("limit=1&offset=1") == [b.pk]
    check_problem(api.get("/mails?folder=spam"), 422)
    check_problem(api.get("/mails?search=" + "x" * 101), 422)


def test_counts_are_unread_per_folder(customer: User) -> None:
    MailFactory(user=customer)
    MailFactory(user=customer)
    MailFactory(user=customer, read_flag=True)
    MailFactory(user=customer, folder="trash", home_folder="inbox")
    MailFactory()  # someone else's
    assert client(customer).get("/mails/counts").json() == {**NO_UNREAD, "inbox": 2, "trash": 1}


# --- changing -------------------------------------------------------------------------------
def test_patch_marks_read_and_moves_with_events(customer: User) -> None:
    mail = MailFactory(user=customer)
    api = client(customer)
    read = api.patch(f"/mails/{mail.pk}", {"read_flag": True})
    assert read.status_code == 200, read.content
    assert read.json()["read_flag"] is True
    archived = api.patch(f"/mails/{mail.pk}", {"folder": "archive", "read_flag": False}).json()
    assert (archived["folder"], archived["read_flag"]) == ("archive", False)
    api.patch(f"/mails/{mail.pk}", {"folder": "archive"})  # no change, no event
    back = api.patch(f"/mails/{mail.pk}", {"folder": "inbox"}).json()
    assert back["folder"] == "inbox"
    assert api.get(f"/mails/{mail.pk}").json() == back
    assert mail_events(customer) == [
        ("mail.updated", {"mail": read.json(), "counts": NO_UNREAD}),
        ("mail.updated", {"mail": archived, "counts": {**NO_UNREAD, "archive": 1}}),
        ("mail.updated", {"mail": back, "counts": {**NO_UNREAD, "inbox": 1}}),
    ]


@pytest.mark.parametrize(
    ("home", "refused"), [("inbox", "sent"), ("inbox", "drafts"), ("sent", "inbox")]
)
def test_a_copy_returns_only_to_its_own_folder(customer: User, home: str, refused: str) -> None:
    mail = MailFactory(user=customer, folder="archive", home_folder=home)
    body = check_problem(client(customer).patch(f"/mails/{mail.pk}", {"folder": refused}), 422)
    assert body["errors"][0]["loc"] == ["body", "folder"]
    assert Mail.objects.get(pk=mail.pk).folder == "archive"


@pytest.mark.parametrize(
    "payload", [{"read_flag": None}, {"folder": None}, {"folder": "spam"}, {"read_flag": "x"}]
)
def test_patch_rejects_bad_input(customer: User, payload: dict) -> None:
    mail = MailFactory(user=customer)
    check_problem(client(customer).patch(f"/mails/{mail.pk}", payload), 422)


def test_delete_moves_to_trash_then_deletes(customer: User) -> None:
    mail = MailFactory(user=customer)
    api = client(customer)
    assert api.delete(f"/mails/{mail.pk}").status_code == 204
    trashed = api.get(f"/mails/{mail.pk}").json()
    assert trashed["folder"] == "trash"
    assert api.delete(f"/mails/{mail.pk}").status_code == 204
    check_problem(api.get(f"/mails/{mail.pk}"), 404)
    check_problem(api.delete(f"/mails/{mail.pk}"), 404)
    assert mail_events(customer) == [
        ("mail.updated", {"mail": trashed, "counts": {**NO_UNREAD, "trash": 1}}),
        ("mail.deleted", {"id": mail.pk, "counts": NO_UNREAD}),
    ]


# --- who may --------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["Customer", "Editor", "Admin"])
def test_nobody_else_reads_or_changes_a_copy(role: str) -> None:
    owner = UserFactory()
    mail = MailFactory(user=owner)
    intruder = client(UserFactory(roles=[role]))
    check_problem(intruder.get(f"/mails/{mail.pk}"), 404)
    check_problem(intruder.patch(f"/mails/{mail.pk}", {"read_flag": True}), 404)
    check_problem(intruder.patch(f"/mails/{mail.pk}", {"folder": "trash"}), 404)
    check_problem(intruder.delete(f"/mails/{mail.pk}"), 404)
    assert intruder.get("/mails").json() == {"items": [], "count": 0}
    assert intruder.get("/mails/counts").json() == NO_UNREAD
    fresh = Mail.objects.get(pk=mail.pk)
    assert (fresh.folder, fresh.read_flag) == ("inbox", False)
    assert mail_events(owner) == []


def test_anonymous_and_users_without_mail_use_are_refused(anon: ApiClient) -> None:
    user = UserFactory(roles=[])
    mail = MailFactory(user=user)
    attempts = [
        ("GET", "/mails", None),
        ("GET", "/mails/counts", None),
        ("POST", "/mails", {"to": [UserFactory().pk], "subject": "s", "body": "b"}),
        ("GET", f"/mails/{mail.pk}", None),
        ("PATCH", f"/mails/{mail.pk}", {"read_flag": True}),
        ("DELETE", f"/mails/{mail.pk}", None),
    ]
    for api, status in ((anon, 401), (client(user), 403)):
        for method, path, payload in attempts:
            check_problem(api.request(method, path, payload), status)
    assert Mail.objects.count() == 1
