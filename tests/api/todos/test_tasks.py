"""/tasks: owner-only CRUD, completion, filters, pagination, validation, events."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.accounts.models import User
from backend.todos.models import Task
from realtime.models import OutboxEvent
from tests.api.conftest import check_problem
from tests.conftest import ApiClient
from tests.factories import TaskFactory, UserFactory, bearer_for

pytestmark = pytest.mark.django_db

TASK_KEYS = {
    "id",
    "user_id",
    "title",
    "details",
    "due_date",
    "completed_at",
    "created_at",
    "updated_at",
}


def _events(user: User) -> list[tuple[str, str]]:
    return list(
        OutboxEvent.objects.filter(topic=f"user.{user.pk}", event__startswith="task.")
        .order_by("id")
        .values_list("event", "payload")
    )


# --- create and read ------------------------------------------------------------------------
def test_create_returns_the_task_and_get_shows_the_same(
    as_customer: ApiClient, customer: User
) -> None:
    created = as_customer.post(
        "/tasks", {"title": "  Buy milk ", "details": "2 litres", "due_date": "2026-12-01"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == TASK_KEYS
    assert body["user_id"] == customer.pk
    assert body["title"] == "Buy milk"
    assert body["details"] == "2 litres"
    assert body["due_date"] == "2026-12-01"
    assert body["completed_at"] is None
    assert as_customer.get(f"/tasks/{body['id']}").json() == body


def test_create_with_title_only(as_customer: ApiClient) -> None:
    body = as_customer.post("/tasks", {"title": "Call Bob"}).json()
    assert body["details"] == ""
    assert body["due_date"] is None


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"title": "   "}, ["body", "title"]),
        ({"title": "x" * 201}, ["body", "title"]),
        ({"title": None}, ["body", "title"]),
        ({"title": 5}, ["body", "title"]),
        ({"title": "\ud800"}, ["body", "title"]),
        ({"title": "ok", "details": "x" * 10_001}, ["body", "details"]),
        ({"title": "ok", "due_date": "tomorrow"}, ["body", "due_date"]),
        ({"title": "ok", "due_date": "2026-02-30"}, ["body", "due_date"]),
        ({"title": "ok", "due_date": "0001-01-01"}, ["body", "due_date"]),
    ],
)
def test_create_rejects_bad_input(as_customer: ApiClient, payload: dict, loc: list) -> None:
    body = check_problem(as_customer.post("/tasks", payload), 422)
    assert loc in [error["loc"] for error in body["errors"]]
    assert not Task.objects.exists()


@pytest.mark.parametrize("raw", ["[]", "null", "0", '"title"'])
def test_create_rejects_a_body_that_is_not_an_object(as_customer: ApiClient, raw: str) -> None:
    check_problem(as_customer.post("/tasks", raw=raw), 422)


def test_create_rejects_malformed_json(as_customer: ApiClient) -> None:
    check_problem(as_customer.post("/tasks", raw="{"), 400)


def test_unicode_titles_round_trip(as_customer: ApiClient) -> None:
    body = as_customer.post("/tasks", {"title": "Kaffee ☕ kaufen 🛒"}).json()
    assert as_customer.get(f"/tasks/{body['id']}").json()["title"] == "Kaffee ☕ kaufen 🛒"


# --- list, filters, pagination --------------------------------------------------------------
def test_list_shows_only_own_tasks_oldest_first(as_customer: ApiClient, customer: User) -> None:
    mine = [TaskFactory(user=customer) for _ in range(3)]
    TaskFactory(user=UserFactory())
    body = as_customer.get("/tasks").json()
    assert body["count"] == 3
    assert [t["id"] for t in body["items"]] == [t.pk for t in mine]
    assert all(set(t) == TASK_KEYS for t in body["items"])


def test_list_pages(as_customer: ApiClient, customer: User) -> None:
    tasks = [TaskFactory(user=customer) for _ in range(5)]
    first = as_customer.get("/tasks?limit=2").json()
    assert [t["id"] for t in first["items"]] == [t.pk for t in tasks[:2]]
    assert first["count"] == 5
    last = as_customer.get("/tasks?limit=2&offset=4").json()
    assert [t["id"] for t in last["items"]] == [tasks[4].pk]
    check_problem(as_customer.get("/tasks?limit=0"), 422)
    check_problem(as_customer.get("/tasks?limit=101"), 422)


def test_filters_by_completion_and_due_date(as_customer: ApiClient, customer: User) -> None:
    from datetime import date

    from django.utils import timezone

    done = TaskFactory(user=customer, completed_at=timezone.now(), due_date=date(2026, 1, 5))
    open_early = TaskFactory(user=customer, due_date=date(2026, 1, 1))
    open_late = TaskFactory(user=customer, due_date=date(2026, 3, 1))
    undated = TaskFactory(user=customer)

    def ids(query: str) -> list[int]:
        answer = as_customer.get(f"/tasks?{query}")
        assert answer.status_code == 200, answer.content
        return [t["id"] for t in answer.json()["items"]]

    assert ids("completed=true") == [done.pk]
    assert ids("completed=false") == [open_early.pk, open_late.pk, undated.pk]
    assert ids("due_before=2026-02-01") == [done.pk, open_early.pk]
    assert ids("due_before=2026-01-01") == []  # strictly before
    assert ids("due_before=2026-02-01&completed=false") == [open_early.pk]
    check_problem(as_customer.get("/tasks?completed=maybe"), 422)
    check_problem(as_customer.get("/tasks?due_before=soon"), 422)


# --- update ---------------------------------------------------------------------------------
def test_completed_sets_and_clears_completed_at(as_customer: ApiClient, customer: User) -> None:
    task = TaskFactory(user=customer)
    done = as_customer.patch(f"/tasks/{task.pk}", {"completed": True})
    assert done.status_code == 200, done.content
    stamped = done.json()["completed_at"]
    assert stamped is not None
    # Marking a done task done again keeps the moment it was first done.
    again = as_customer.patch(f"/tasks/{task.pk}", {"completed": True}).json()
    assert again["completed_at"] == stamped
    reopened = as_customer.patch(f"/tasks/{task.pk}", {"completed": False}).json()
    assert reopened["completed_at"] is None
    assert as_customer.get(f"/tasks/{task.pk}").json() == reopened


def test_patch_changes_only_the_fields_given(as_customer: ApiClient, customer: User) -> None:
    from datetime import date

    task = TaskFactory(user=customer, title="old", details="keep", due_date=date(2026, 5, 1))
    body = as_customer.patch(f"/tasks/{task.pk}", {"title": "new"}).json()
    assert (body["title"], body["details"], body["due_date"]) == ("new", "keep", "2026-05-01")
    cleared = as_customer.patch(f"/tasks/{task.pk}", {"due_date": None}).json()
    assert cleared["due_date"] is None
    assert cleared["title"] == "new"


@pytest.mark.parametrize(
    "payload",
    [{"title": None}, {"title": ""}, {"completed": None}, {"details": None}, {"due_date": "x"}],
)
def test_patch_rejects_bad_input(as_customer: ApiClient, customer: User, payload: dict) -> None:
    task = TaskFactory(user=customer, title="same")
    check_problem(as_customer.patch(f"/tasks/{task.pk}", payload), 422)
    assert Task.objects.get(pk=task.pk).title == "same"


def test_events_carry_the_task_as_get_shows_it(as_customer: ApiClient, customer: User) -> None:
    import json

    created = as_customer.post("/tasks", {"title": "a"}).json()
    updated = as_customer.patch(f"/tasks/{created['id']}", {"completed": True}).json()
    as_customer.patch(f"/tasks/{created['id']}", {"completed": True})  # no change, no event
    assert as_customer.delete(f"/tasks/{created['id']}").status_code == 204
    events = [(name, json.loads(payload)) for name, payload in _events(customer)]
    assert events == [
        ("task.created", created),
        ("task.updated", updated),
        ("task.deleted", {"id": created["id"]}),
    ]


# --- delete ---------------------------------------------------------------------------------
def test_delete_removes_the_task(as_customer: ApiClient, customer: User) -> None:
    task = TaskFactory(user=customer)
    assert as_customer.delete(f"/tasks/{task.pk}").status_code == 204
    check_problem(as_customer.get(f"/tasks/{task.pk}"), 404)
    check_problem(as_customer.delete(f"/tasks/{task.pk}"), 404)


# --- who may ---------------------------------------------------------------------------------
def _attempts(task_id: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/tasks/{task_id}", None),
        ("PATCH", f"/tasks/{task_id}", {"title": "taken over"}),
        ("PATCH", f"/tasks/{task_id}", {"completed": True}),
        ("DELETE", f"/tasks/{task_id}", None),
    ]


@pytest.mark.parametrize("role", ["Customer", "Editor", "Admin"])
def test_nobody_else_sees_or_changes_a_task(role: str) -> None:
    owner = UserFactory()
    task = TaskFactory(user=owner, title="mine")
    intruder = ApiClient(bearer_for(UserFactory(roles=[role])))
    for method, path, payload in _attempts(task.pk):
        check_problem(intruder.request(method, path, payload), 404)
    assert intruder.get("/tasks").json() == {"items": [], "count": 0}
    fresh = Task.objects.get(pk=task.pk)
    assert (fresh.title, fresh.completed_at) == ("mine", None)
    assert _events(owner) == []


def test_anonymous_gets_401_everywhere(anon: ApiClient, customer: User) -> None:
    task = TaskFactory(user=customer)
    attempts = [*_attempts(task.pk), ("GET", "/tasks", None), ("POST", "/tasks", {"title": "x"})]
    for method, path, payload in attempts:
        check_problem(anon.request(method, path, payload), 401)
    assert Task.objects.count() == 1


def test_a_user_without_tasks_use_is_refused() -> None:
    user = UserFactory(roles=[])
    task = TaskFactory(user=user)  # left over from when the user still held the right
    client = ApiClient(bearer_for(user))
    attempts = [*_attempts(task.pk), ("GET", "/tasks", None), ("POST", "/tasks", {"title": "x"})]
    for method, path, payload in attempts:
        check_problem(client.request(method, path, payload), 403)
    assert Task.objects.count() == 1


def test_unknown_task_is_404(as_customer: ApiClient) -> None:
    check_problem(as_customer.get("/tasks/999999"), 404)
    check_problem(as_customer.get("/tasks/99999999999999999999999"), 404)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_due_date_the_document_allows_is_accepted(as_customer: ApiClient, data) -> None:
    """The document's date pattern (year 1000 on: MySQL's DATE) is no wider than the server;
    ``format: date`` itself rules out days that do not exist."""
    from django.test import Client

    document = Client().get("/api/v1/openapi.json").json()
    schema = document["components"]["schemas"]["TaskCreateIn"]["properties"]["due_date"]
    form = next(f for f in schema["anyOf"] if f.get("type") == "string")
    assert form["format"] == "date"
    day = data.draw(st.dates(min_value=datetime.date(1000, 1, 1))).isoformat()
    assert re.fullmatch(form["pattern"], day)
    created = as_customer.post("/tasks", {"title": "Dated", "due_date": day})
    assert created.status_code == 201, (day, created.content)
    assert created.json()["due_date"] == day
    assert as_customer.get(f"/tasks?due_before={day}").status_code == 200


def test_a_day_before_year_1000_is_outside_the_document_and_refused(
    as_customer: ApiClient,
) -> None:
    assert as_customer.post("/tasks", {"title": "Old", "due_date": "0999-12-31"}).status_code == 422
