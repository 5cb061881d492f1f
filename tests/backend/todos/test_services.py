"""Task services: events only with committed changes, nothing on refusal."""

from __future__ import annotations

import pytest
from django.db import transaction

from backend.core.errors import NotFound, PermissionDenied
from backend.todos.models import Task
from backend.todos.services import task_create, task_delete, task_update
from realtime.models import OutboxEvent
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_rolled_back_change_leaves_no_event() -> None:
    user = UserFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        task_create(actor=user, title="gone")
        raise RuntimeError("the caller's transaction fails")
    assert not Task.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_refusals_write_nothing() -> None:
    owner, other, no_rights = UserFactory(), UserFactory(), UserFactory(roles=[])
    task = TaskFactory(user=owner, title="mine")
    with pytest.raises(NotFound):
        task_update(actor=other, task_id=task.pk, changes={"title": "x"})
    with pytest.raises(NotFound):
        task_delete(actor=other, task_id=task.pk)
    with pytest.raises(PermissionDenied):
        task_create(actor=no_rights, title="x")
    assert list(Task.objects.values_list("title", flat=True)) == ["mine"]
    assert not OutboxEvent.objects.exists()


def test_update_refuses_fields_it_does_not_know() -> None:
    task = TaskFactory()
    with pytest.raises(ValueError, match="user"):
        task_update(actor=task.user, task_id=task.pk, changes={"user": 5})
