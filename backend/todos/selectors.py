"""Reads of the tasks area. Tasks are private: every read is scoped to the actor's own."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet

from backend.accounts.models import User
from backend.core.errors import NotFound
from backend.todos.models import Task


def task_representation(task: Task) -> dict[str, Any]:
    """The task as ``GET /tasks/{id}`` shows it and as its events carry it."""
    return {
        "id": task.pk,
        "user_id": task.user_id,
        "title": task.title,
        "details": task.details,
        "due_date": task.due_date,
        "completed_at": task.completed_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def task_list(
    *, actor: User, completed: bool | None = None, due_before: date | None = None
) -> QuerySet[Task]:
    """The actor's own tasks, oldest first; ``due_before`` keeps tasks due strictly before
    that day (tasks without a due date are left out then)."""
    tasks = Task.objects.filter(user=actor).order_by("id")
    if completed is not None:
        tasks = tasks.filter(completed_at__isnull=not completed)
    if due_before is not None:
        tasks = tasks.filter(due_date__lt=due_before)
    return tasks


def task_get(*, actor: User, task_id: int) -> Task:
    """One of the actor's tasks; anyone else's looks exactly like a missing one (404)."""
    task = Task.objects.filter(pk=task_id, user=actor).first()
    if task is None:
        raise NotFound(detail="No such task.")
    return task
