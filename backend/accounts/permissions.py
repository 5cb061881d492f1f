"""Permissions declared by the accounts app, and (for now) by areas whose app does not exist.

Checks go through ``backend.core.permissions`` (``has_perm``/``require_perm``/...).
"""

from __future__ import annotations

from backend.accounts.catalog import CUSTOMER, EDITOR
from backend.core.permissions import PermissionSpec

_USER = "accounts.User"
# Placeholder home of the areas below until their app lands: the content and app modules
# take them over in their own ``permissions.py`` (seeding moves the rows' content type and
# keeps the role assignments).
_NOT_YET_HOMED = "accounts.User"

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec("users.view", "List and view any user", _USER),
    PermissionSpec("users.create", "Create users", _USER),
    PermissionSpec("users.update", "Update any user, including roles and active flag", _USER),
    PermissionSpec("users.delete", "Delete users", _USER),
    PermissionSpec("roles.manage", "Create and change roles", "accounts.Role"),
    # --- taken over by their own apps when those land (commerce already has) ---------------
    PermissionSpec("posts.create", "Write own blog posts", _NOT_YET_HOMED, roles=(EDITOR,)),
    PermissionSpec(
        "posts.manage", "Edit, publish and delete any post", _NOT_YET_HOMED, roles=(EDITOR,)
    ),
    PermissionSpec(
        "files.upload", "Upload and share own files", _NOT_YET_HOMED, roles=(CUSTOMER, EDITOR)
    ),
    PermissionSpec("files.manage", "Read and delete any file", _NOT_YET_HOMED),
)
