"""The refusal matrix every module applies to its endpoints.

Per endpoint, the status each actor must get: ``anonymous`` (no token), ``owner`` (the user
the object under test belongs to), ``other`` (a signed-in user with the same default rights
who does not own it) and ``staff`` (a user whose role holds the module's managing rights).
A refused request must answer problem+json and change nothing: the module's ``state()``
snapshot is taken before and compared after.

Use::

    USERS = [Endpoint("GET", "/users/{id}", {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200})]

    @pytest.fixture
    def world() -> World:
        owner = UserFactory()
        return World(owner=owner, other=UserFactory(), staff=staff_with("users.view"),
                     object_id=owner.pk, state=lambda: ...)

    @pytest.mark.parametrize(("endpoint", "actor"), matrix(USERS))
    def test_users_matrix(world: World, endpoint: Endpoint, actor: str) -> None:
        check(world, endpoint, actor)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import Group

from backend.accounts.models import User
from backend.core.permissions import permission_rows
from tests.conftest import ApiClient
from tests.factories import UserFactory, bearer_for

ANONYMOUS = "anonymous"
OWNER = "owner"
OTHER = "other"
STAFF = "staff"
ACTORS: tuple[str, ...] = (ANONYMOUS, OWNER, OTHER, STAFF)

_role_numbers = itertools.count(1)


@dataclass(frozen=True)
class Endpoint:
    """One request and the status each actor must get. ``{id}`` in ``path`` (and in string
    values of ``body``) becomes the id of the object under test."""

    method: str
    path: str
    expect: dict[str, int]
    body: dict[str, Any] | None = None
    label: str = ""

    def __post_init__(self) -> None:
        missing = set(ACTORS) - set(self.expect)
        assert not missing, f"{self.method} {self.path}: no expected status for {missing}"

    def describe(self) -> str:
        return self.label or f"{self.method} {self.path}"


@dataclass
class World:
    """The actors and the object under test, built by a module's fixture.

    ``state`` returns a comparable snapshot of everything these endpoints could change."""

    owner: User
    other: User
    staff: User
    object_id: int
    state: Callable[[], Any]
    _clients: dict[str, ApiClient] = field(default_factory=dict)

    def user(self, actor: str) -> User | None:
        return {ANONYMOUS: None, OWNER: self.owner, OTHER: self.other, STAFF: self.staff}[actor]

    def client(self, actor: str) -> ApiClient:
        if actor not in self._clients:
            user = self.user(actor)
            self._clients[actor] = ApiClient(bearer_for(user) if user is not None else None)
        return self._clients[actor]


def staff_with(*permission_names: str, **user_fields: Any) -> User:
    """A user whose only role holds exactly these rights (by catalog name)."""
    group = Group.objects.create(name=f"Matrix staff {next(_role_numbers)}")
    rows = list(permission_rows(permission_names))
    assert len(rows) == len(set(permission_names)), f"undeclared among {permission_names}"
    group.permissions.set(rows)
    return UserFactory(roles=[group.name], **user_fields)


def matrix(endpoints: Iterable[Endpoint]) -> list[Any]:
    """``pytest.param(endpoint, actor)`` for every endpoint and actor."""
    return [
        pytest.param(endpoint, actor, id=f"{endpoint.describe()} as {actor}")
        for endpoint in endpoints
        for actor in ACTORS
    ]


def _fill(value: Any, object_id: int) -> Any:
    if isinstance(value, str):
        return value.replace("{id}", str(object_id))
    if isinstance(value, dict):
        return {key: _fill(item, object_id) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, object_id) for item in value]
    return value


def check(world: World, endpoint: Endpoint, actor: str) -> Any:
    """Send the request as ``actor``; assert the expected status, and for a refusal a
    problem+json answer and an unchanged ``state()``. Returns the response."""
    expected = endpoint.expect[actor]
    client = world.client(actor)  # issues the actor's token before the snapshot
    before = world.state()
    response = client.request(
        endpoint.method,
        _fill(endpoint.path, world.object_id),
        _fill(endpoint.body, world.object_id),
    )
    assert response.status_code == expected, (
        f"{endpoint.describe()} as {actor}: {response.status_code} instead of {expected}: "
        f"{response.content[:300]!r}"
    )
    if expected >= 400:
        assert response["Content-Type"].startswith("application/problem+json")
        assert world.state() == before, f"{endpoint.describe()} as {actor} was refused but wrote"
    return response
