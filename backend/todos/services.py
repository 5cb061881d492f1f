"""Writes of the tasks area: owner-only, each in one transaction with its event.

Every change publishes to ``user.{owner id}``: ``task.created`` / ``task.updated`` carry the
task as ``GET /tasks/{id}`` shows it, ``task.deleted`` carries ``{"id": ...}``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from backend.accounts.models import User
from backend.core.errors import NotFound
from backend.todos.models import Task
from backend.todos.permissions import require_tasks_use
from backend.todos.selectors import task_representation
from realtime.publish import publish

# Fields PATCH may change; ``completed`` maps onto ``completed_at``.
EDITABLE_FIELDS = frozenset({"title", "details", "due_date", "completed"})


def _publish(task: Task, event: str) -> None:
    publish(f"user.{task.user_id}", event, task_representation(task))


def _locked_own_task(*, actor: User, task_id: int) -> Task:
    task = Task.objects.select_for_update().filter(pk=task_id, user=actor).first()
    if task is None:
        raise NotFound(detail="No such task.")
    return task


def task_create(
    *, actor: User, title: str, details: str = "", due_date: date | None = None
) -> Task:
    require_tasks_use(actor)
    with transaction.atomic():
        task = Task.objects.create(user=actor, title=title, details=details, due_date=due_date)
        _publish(task, "task.created")
    return task


def task_update(*, actor: User, task_id: int, changes: dict[str, Any]) -> Task:
    """Apply the given fields. ``completed: true`` stamps ``completed_at`` (kept as it was
    when the task is already done), ``false`` clears it. No change, no event."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    require_tasks_use(actor)
    with transaction.atomic():
        task = _locked_own_task(actor=actor, task_id=task_id)
        dirty: list[str] = []
        for field in ("title", "details", "due_date"):
            if field in changes and getattr(task, field) != changes[field]:
                setattr(task, field, changes[field])
                dirty.append(field)
        if "completed" in changes and changes["completed"] != (task.completed_at is not None):
            task.completed_at = timezone.now() if changes["completed"] else None
            dirty.append("completed_at")
        if dirty:
            task.save(update_fields=[*dirty, "updated_at"])
            _publish(task, "task.updated")
    return task


def task_delete(*, actor: User, task_id: int) -> None:
    require_tasks_use(actor)
    with transaction.atomic():
        task = _locked_own_task(actor=actor, task_id=task_id)
        owner_id, deleted_id = task.user_id, task.pk
        task.delete()
        publish(f"user.{owner_id}", "task.deleted", {"id": deleted_id})
