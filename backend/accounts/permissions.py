"""Permissions declared by the accounts app.

Checks go through ``backend.core.permissions`` (``has_perm``/``require_perm``/...).
"""

from __future__ import annotations

from backend.core.permissions import PermissionSpec

_USER = "accounts.User"

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec("users.view", "List and view any user", _USER),
    PermissionSpec("users.create", "Create users", _USER),
    PermissionSpec("users.update", "Update any user, including roles and active flag", _USER),
    PermissionSpec("users.delete", "Delete users", _USER),
    PermissionSpec("roles.manage", "Create and change roles", "accounts.Role"),
)
