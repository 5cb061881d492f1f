"""/tasks under the refusal matrix: only the owner, whatever the others' roles."""

from __future__ import annotations

import pytest

from backend.todos.models import Task
from realtime.models import OutboxEvent
from tests.factories import TaskFactory, UserFactory
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
    tasks = tuple(Task.objects.order_by("pk").values_list())
    return tasks, OutboxEvent.objects.count()


@pytest.fixture
def world() -> World:
    owner = UserFactory(roles=["Customer"])
    task = TaskFactory(user=owner)
    return World(
        owner=owner,
        other=UserFactory(roles=["Customer"]),
        # No right reaches into someone's task list: Admin holds every right there is.
        staff=UserFactory(roles=["Admin"]),
        object_id=task.pk,
        state=_state,
    )


OWN_ONLY = {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 404}
TASKS_ENDPOINTS = [
    Endpoint("GET", "/tasks", {ANONYMOUS: 401, OWNER: 200, OTHER: 200, STAFF: 200}),
    Endpoint(
        "POST", "/tasks", {ANONYMOUS: 401, OWNER: 201, OTHER: 201, STAFF: 201}, {"title": "t"}
    ),
    Endpoint("GET", "/tasks/{id}", OWN_ONLY),
    Endpoint("PATCH", "/tasks/{id}", OWN_ONLY, {"title": "changed"}),
    Endpoint("PATCH", "/tasks/{id}", OWN_ONLY, {"completed": True}, label="PATCH completed"),
    Endpoint("DELETE", "/tasks/{id}", {**OWN_ONLY, OWNER: 204}),
]


@pytest.mark.parametrize(("endpoint", "actor"), matrix(TASKS_ENDPOINTS))
def test_tasks_matrix(world: World, endpoint: Endpoint, actor: str) -> None:
    response = check(world, endpoint, actor)
    if endpoint.path == "/tasks" and endpoint.method == "GET" and actor != ANONYMOUS:
        ids = [task["id"] for task in response.json()["items"]]
        assert ids == ([world.object_id] if actor == OWNER else [])
