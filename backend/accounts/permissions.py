"""Permission checks of the accounts area, shared by the REST routers and the socket.

Every check takes a catalog name (``users.view``); the app-label prefix Django needs stays
in here.
"""

from __future__ import annotations

from backend.accounts.catalog import PERMISSION_NAMES
from backend.accounts.models import PERMISSION_APP_LABEL, User
from backend.core.errors import PermissionDenied


def has_permission(user: User, name: str) -> bool:
    """Role-level right (via the user's groups; a superuser has every right)."""
    if name not in PERMISSION_NAMES:
        raise ValueError(f"unknown permission {name!r}")
    return user.is_active and user.has_perm(f"{PERMISSION_APP_LABEL}.{name}")


def require_permission(user: User, name: str) -> None:
    if not has_permission(user, name):
        raise PermissionDenied(detail=f"This needs the {name} permission.")


def can_view_user(actor: User, target_id: int) -> bool:
    return actor.pk == target_id or has_permission(actor, "users.view")


def can_update_user(actor: User, target_id: int) -> bool:
    return actor.pk == target_id or has_permission(actor, "users.update")
