"""Rights of the tasks area. A task list is private: ``tasks.use`` lets a user keep one,
and no right reads another user's tasks (not even Admin's: they are personal notes)."""

from __future__ import annotations

from backend.accounts.catalog import CUSTOMER, EDITOR
from backend.accounts.models import User
from backend.core.permissions import PermissionSpec, require_perm

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec("tasks.use", "Keep an own to-do list", "todos.Task", roles=(CUSTOMER, EDITOR)),
)


def require_tasks_use(user: User) -> None:
    require_perm(user, "tasks.use")
