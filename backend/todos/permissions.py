"""Rights of the tasks area. A task list is private: ``tasks.use`` lets a user keep one,
and no role reads another user's tasks (not even Admin: they are personal notes)."""

from __future__ import annotations

from backend.accounts.models import User
from backend.accounts.permissions import require_permission


def require_tasks_use(user: User) -> None:
    require_permission(user, "tasks.use")
