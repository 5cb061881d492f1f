"""/mails under the refusal matrix: a copy is its owner's only."""

from __future__ import annotations

import pytest

from backend.messaging.models import Mail
from realtime.models import OutboxEvent
from tests.factories import MailFactory, UserFactory
from tests.permission_matrix import (
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
    mails = tuple(Mail.objects.order_by("pk").values_list("pk", "user_id", "folder", "read_flag"))
    return mails, OutboxEvent.objects.count()


@pytest.fixture
def world() -> World:
    owner = UserFactory(roles=["Customer"])
    mail = MailFactory(user=owner)
    return World(
        owner=owner,
        other=UserFactory(roles=["Customer"]),
        staff=UserFactory(roles=["Admin"]),
        object_id=mail.pk,
        state=_state,
    )


OWN_ONLY = {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 404}
EVERY_USER = {ANONYMOUS: 401, OWNER: 200, OTHER: 200, STAFF: 200}
MAIL_ENDPOINTS = [
    Endpoint("GET", "/mails", EVERY_USER),
    Endpoint("GET", "/mails/counts", EVERY_USER),
    Endpoint("GET", "/mails/{id}", OWN_ONLY),
    Endpoint("PATCH", "/mails/{id}", OWN_ONLY, {"read_flag": True}),
    Endpoint("PATCH", "/mails/{id}", OWN_ONLY, {"folder": "archive"}, label="PATCH folder"),
    Endpoint("DELETE", "/mails/{id}", {**OWN_ONLY, OWNER: 204}),
]


@pytest.mark.parametrize(("endpoint", "actor"), matrix(MAIL_ENDPOINTS))
def test_mail_matrix(world: World, endpoint: Endpoint, actor: str) -> None:
    response = check(world, endpoint, actor)
    if endpoint.path == "/mails" and actor != ANONYMOUS:
        ids = [mail["id"] for mail in response.json()["items"]]
        assert ids == ([world.object_id] if actor == OWNER else [])
    if endpoint.path == "/mails/counts" and actor != ANONYMOUS:
        assert response.json()["inbox"] == (1 if actor == OWNER else 0)


def test_sending_matrix(world: World) -> None:
    recipient = UserFactory()
    send = Endpoint(
        "POST",
        "/mails",
        {ANONYMOUS: 401, OWNER: 201, OTHER: 201, STAFF: 201},
        {"to": [recipient.pk], "subject": "s", "body": "b"},
    )
    for actor in (ANONYMOUS, OWNER, OTHER, STAFF):
        check(world, send, actor)
    assert Mail.objects.filter(user=recipient).count() == 3
