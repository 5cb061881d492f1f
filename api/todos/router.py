"""/tasks: a user's own to-do list. Thin: parse, call a service or selector, shape."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from api.errors import problem_responses
from api.pagination import Page, paginate
from api.security import current_user
from api.todos.schemas import TaskCreateIn, TaskListQuery, TaskOut, TaskPatchIn
from backend.todos import selectors, services
from backend.todos.permissions import require_tasks_use
from backend.todos.selectors import task_representation

router = Router()


@router.get(
    "",
    response={200: Page[TaskOut], **problem_responses(401, 403, 422)},
    summary="Own tasks, oldest first; ?completed= and ?due_before= filter",
)
def task_list(request: HttpRequest, query: Query[TaskListQuery]) -> dict[str, Any]:
    actor = current_user(request)
    require_tasks_use(actor)
    tasks = selectors.task_list(actor=actor, completed=query.completed, due_before=query.due_before)
    return paginate(tasks, query, task_representation)


@router.post(
    "",
    response={201: TaskOut, **problem_responses(401, 403, 422)},
    summary="Add a task to one's own list",
)
def task_create(request: HttpRequest, payload: TaskCreateIn) -> Status[dict[str, Any]]:
    task = services.task_create(
        actor=current_user(request),
        title=payload.title,
        details=payload.details,
        due_date=payload.due_date,
    )
    return Status(201, task_representation(task))


@router.get(
    "/{int:task_id}",
    response={200: TaskOut, **problem_responses(401, 403, 404)},
    summary="One own task (anyone else's is 404)",
)
def task_detail(request: HttpRequest, task_id: int) -> dict[str, Any]:
    actor = current_user(request)
    require_tasks_use(actor)
    return task_representation(selectors.task_get(actor=actor, task_id=task_id))


@router.patch(
    "/{int:task_id}",
    response={200: TaskOut, **problem_responses(401, 403, 404, 422)},
    summary="Change fields; {completed: true|false} sets or clears completed_at",
)
def task_patch(request: HttpRequest, task_id: int, payload: TaskPatchIn) -> dict[str, Any]:
    task = services.task_update(
        actor=current_user(request),
        task_id=task_id,
        changes=payload.model_dump(exclude_unset=True),
    )
    return task_representation(task)


@router.delete(
    "/{int:task_id}",
    response={204: None, **problem_responses(401, 403, 404)},
    summary="Delete an own task",
)
def task_delete(request: HttpRequest, task_id: int) -> Status[None]:
    services.task_delete(actor=current_user(request), task_id=task_id)
    return Status(204, None)
