"""The users endpoints under the refusal matrix (anonymous / owner / other user / staff)."""

from __future__ import annotations

import pytest

from backend.accounts.models import PersonalAccessToken, User
from realtime.models import OutboxEvent
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.permission_matrix import (
    ANONYMOUS,
    OTHER,
    OWNER,
    STAFF,
    Endpoint,
    World,
    check,
    matrix,
    staff_with,
)

pytestmark = pytest.mark.django_db


def _everything_users_endpoints_touch() -> tuple:
    users = tuple(
        (u.pk, u.name, u.email, u.is_active, u.password, tuple(g.name for g in u.groups.all()))
        for u in User.objects.prefetch_related("groups").order_by("pk")
    )
    live_tokens = tuple(PersonalAccessToken.objects.live().values_list("pk", flat=True))
    return users, live_tokens, OutboxEvent.objects.count()


@pytest.fixture
def world() -> World:
    owner = UserFactory(roles=["Customer"])
    return World(
        owner=owner,
        other=UserFactory(roles=["Customer"]),
        staff=staff_with("users.view", "users.create", "users.update", "users.delete"),
        object_id=owner.pk,
        state=_everything_users_endpoints_touch,
    )


USERS_ENDPOINTS = [
    Endpoint("GET", "/users", {ANONYMOUS: 401, OWNER: 403, OTHER: 403, STAFF: 200}),
    Endpoint(
        "POST",
        "/users",
        {ANONYMOUS: 401, OWNER: 403, OTHER: 403, STAFF: 201},
        body={"name": "New One", "email": "new.one@example.com", "password": "glacier-Otter-517"},
    ),
    Endpoint(
        "POST",
        "/users",
        {ANONYMOUS: 401, OWNER: 403, OTHER: 403, STAFF: 201},
        body={
            "name": "Boss",
            "email": "boss@example.com",
            "password": "glacier-Otter-517",
            "roles": ["Admin"],
        },
        label="POST /users with a role",
    ),
    Endpoint("GET", "/users/{id}", {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200}),
    Endpoint(
        "PATCH",
        "/users/{id}",
        {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200},
        body={"name": "Renamed"},
    ),
    Endpoint(
        "PATCH",
        "/users/{id}",
        {ANONYMOUS: 401, OWNER: 403, OTHER: 404, STAFF: 200},
        body={"roles": ["Admin"]},
        label="PATCH /users/{id} roles",
    ),
    Endpoint(
        "PATCH",
        "/users/{id}",
        {ANONYMOUS: 401, OWNER: 403, OTHER: 404, STAFF: 200},
        body={"is_active": False},
        label="PATCH /users/{id} is_active",
    ),
    Endpoint(
        "PUT",
        "/users/{id}",
        {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200},
        # current_password: the owner changes its own email (others' is not checked).
        body={
            "name": "Put Name",
            "email": "put.{id}@example.com",
            "current_password": DEFAULT_PASSWORD,
        },
    ),
    Endpoint("DELETE", "/users/{id}", {ANONYMOUS: 401, OWNER: 403, OTHER: 403, STAFF: 204}),
]


@pytest.mark.parametrize(("endpoint", "actor"), matrix(USERS_ENDPOINTS))
def test_users_endpoints_refuse_whom_they_must(
    world: World, endpoint: Endpoint, actor: str
) -> None:
    check(world, endpoint, actor)


def test_staff_with_only_users_view_may_read_but_not_write(world: World) -> None:
    world.staff = staff_with("users.view")
    reader = {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200}
    check(world, Endpoint("GET", "/users/{id}", reader), STAFF)
    # Seeing the user, a reader is told why (403) instead of "no such user" (404).
    writer = {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 403}
    check(world, Endpoint("PATCH", "/users/{id}", writer, body={"name": "Nope"}), STAFF)
    deleter = {ANONYMOUS: 401, OWNER: 403, OTHER: 403, STAFF: 403}
    check(world, Endpoint("DELETE", "/users/{id}", deleter), STAFF)
